"""Command line: ``aistack-agents router --query Q [--verbose]``, ``aistack-agents crew --topic
T [--verbose]``, ``aistack-agents serve [--workflow router|crew]`` and
``aistack-agents ask --url URL --query Q`` (an A2A client of a running server); the lab's BeeAI
agent: ``aistack-agents beeai --query Q [--verbose]`` and ``aistack-agents beeai-serve`` (its
own venv/image: beeai-framework speaks A2A 0.3).

The router and the crew print one JSON object on stdout: the result (the full state or trace
with --verbose), or {"error": ...} with exit status 2 when no LLM is configured and 1 when the
LLM failed.
``ask`` prints {"url", "query", "state", "answer", "message", "result"}: exit status 0 when
the agent completed the task, 2 when it did not (failed or rejected; "message" says why, e.g.
no LLM configured), 1 when the server could not be reached or spoke no A2A.
``bench travelplanner ...`` and ``bench vendingbench ...``: the agentic benchmarks
(aistack_agents.bench.cli).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from aistack_agents.settings import NO_LLM_HELP, Settings

if TYPE_CHECKING:
    from aistack_agents.beeai.settings import BeeAISettings


def _print(obj: dict[str, Any], indent: int | None) -> None:
    print(json.dumps(obj, indent=indent, ensure_ascii=False))


async def _run_router(settings: Settings, args: argparse.Namespace) -> int:
    from aistack_agents.llm import LLMError
    from aistack_agents.router.graph import QueryRouter, open_checkpointer, result_summary
    from aistack_agents.telemetry import setup_tracing

    setup_tracing()
    async with open_checkpointer(settings.checkpoint_dsn) as saver:
        router = QueryRouter(settings, checkpointer=saver)
        try:
            state = await router.run(args.query, thread_id=args.thread_id)
        except LLMError as exc:
            _print({"query": args.query, "error": str(exc)}, args.indent)
            print(f"aistack-agents router: {exc}", file=sys.stderr)
            return 1
        finally:
            await router.close()
    _print(dict(state) if args.verbose else result_summary(state), args.indent)
    return 0


async def _run_crew(settings: Settings, args: argparse.Namespace) -> int:
    import contextlib

    from aistack_agents.crew.crew import ResearchCrew
    from aistack_agents.llm import LLMError
    from aistack_agents.telemetry import setup_tracing

    setup_tracing()
    crew = ResearchCrew(settings)
    try:
        # CrewAI may print; stdout carries only the JSON result.
        with contextlib.redirect_stdout(sys.stderr):
            run = await crew.run(args.topic)
    except LLMError as exc:
        _print({"topic": args.topic, "error": str(exc)}, args.indent)
        print(f"aistack-agents crew: {exc}", file=sys.stderr)
        return 1
    finally:
        await crew.close()
    print(
        json.dumps(
            run.trace() if args.verbose else run.summary(),
            indent=args.indent,
            ensure_ascii=False,
            default=str,
        )
    )
    return 0


async def ask(url: str, query: str, timeout_s: float) -> dict[str, Any]:
    """Sends one message to an A2A server (a2a-sdk client, JSON-RPC, not streaming) and returns
    the task's outcome. Raises on transport or protocol errors."""
    import httpx
    from a2a.client import ClientConfig, create_client
    from a2a.helpers import get_artifact_text, get_message_text, new_text_message
    from a2a.types import Role, SendMessageRequest, TaskState
    from google.protobuf.json_format import MessageToDict

    http = httpx.AsyncClient(timeout=timeout_s)
    try:
        client = await create_client(
            url, client_config=ClientConfig(streaming=False, httpx_client=http)
        )
        try:
            request = SendMessageRequest(message=new_text_message(query, role=Role.ROLE_USER))
            events = [event async for event in client.send_message(request)]
        finally:
            await client.close()
    finally:
        await http.aclose()
    out: dict[str, Any] = {"url": url, "query": query, "state": None, "answer": None}
    out |= {"message": None, "result": None}
    for event in events:
        if event.HasField("message"):  # a direct reply without a task
            out["state"], out["answer"] = "completed", get_message_text(event.message)
        elif event.HasField("task"):
            task = event.task
            out["state"] = TaskState.Name(task.status.state).removeprefix("TASK_STATE_").lower()
            if task.status.HasField("message"):
                out["message"] = get_message_text(task.status.message)
            if task.status.state == TaskState.TASK_STATE_COMPLETED and task.artifacts:
                out["answer"] = get_artifact_text(task.artifacts[0])
                data = [p for p in task.artifacts[0].parts if p.HasField("data")]
                if data:
                    out["result"] = MessageToDict(data[0].data)
    if out["state"] is None:
        raise RuntimeError(f"no task or message in the reply of {url}")
    return out


def _ask(args: argparse.Namespace) -> int:
    try:
        out = asyncio.run(ask(args.url, args.query, args.timeout))
    except Exception as exc:  # transport, HTTP status, JSON-RPC or card errors alike
        detail = f"{type(exc).__name__}: {exc}"
        _print({"url": args.url, "query": args.query, "error": detail}, args.indent)
        print(
            f"aistack-agents ask: could not reach the A2A server at {args.url}: {detail}",
            file=sys.stderr,
        )
        return 1
    _print(out, args.indent)
    return 0 if out["state"] == "completed" else 2


def _add_beeai_parsers(sub: Any) -> None:
    beeai = sub.add_parser("beeai", help="run the lab's BeeAI agent once (JSON result)")
    beeai.add_argument("--query", required=True, help="the question")
    beeai.add_argument("--verbose", action="store_true", help="also the agent's steps, messages")
    beeai.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    serve = sub.add_parser("beeai-serve", help="run the BeeAI agent's A2A server (port 9999)")
    serve.add_argument("--host", default=None, help="default A2A_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default A2A_PORT or 9999")
    serve.add_argument("--log-level", default="info")


def _beeai(args: argparse.Namespace) -> int:
    """``beeai`` and ``beeai-serve``: beeai-framework lives in its own venv/image
    (requirements/beeai.txt), so it is imported only here."""
    from aistack_agents.beeai.settings import BeeAISettings

    try:
        settings = BeeAISettings()
    except ValidationError as exc:
        print(f"aistack-agents: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.command == "beeai" and not args.query.strip():
        print("aistack-agents beeai: --query is empty", file=sys.stderr)
        return 2
    if args.command == "beeai" and not settings.llm_configured:
        error = f"could not answer the query: {NO_LLM_HELP}"
        _print({"query": args.query, "error": error}, args.indent)
        print(f"aistack-agents beeai: {NO_LLM_HELP}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("beeai_framework") is None:
        print(
            "aistack-agents: beeai-framework is not installed here: use the agents-beeai image "
            "or its virtualenv (`make beeai`, requirements/beeai.txt)",
            file=sys.stderr,
        )
        return 2
    if args.command == "beeai-serve":
        from aistack_agents.beeai.server import serve as run_server

        overrides = {
            k: v for k, v in (("a2a_host", args.host), ("a2a_port", args.port)) if v is not None
        }
        if overrides:
            settings = settings.model_copy(update=overrides)
        if not settings.llm_configured:
            print(f"aistack-agents beeai-serve: {NO_LLM_HELP}; serving anyway", file=sys.stderr)
        run_server(settings, args.log_level)
        return 0
    return asyncio.run(_run_beeai(settings, args))


async def _run_beeai(settings: BeeAISettings, args: argparse.Namespace) -> int:
    from aistack_agents.beeai.agent import AgentFailedError, BeeAIRuntime, summary
    from aistack_agents.telemetry import setup_tracing

    setup_tracing("aistack-agents-beeai")
    runtime = BeeAIRuntime(settings)
    await runtime.start()
    try:
        result = await runtime.run(args.query)
    except AgentFailedError as exc:
        _print({"query": args.query, "error": str(exc)}, args.indent)
        print(f"aistack-agents beeai: {exc}", file=sys.stderr)
        return 1
    finally:
        await runtime.close()
    out = summary(result, args.verbose)
    if runtime.mcp_error:
        out["mcp_error"] = runtime.mcp_error
    _print(out, args.indent)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aistack-agents", description="aistack agents")
    sub = parser.add_subparsers(dest="command", required=True)
    router = sub.add_parser("router", help="run the LangGraph query router once (JSON result)")
    router.add_argument("--query", required=True, help="the question")
    router.add_argument("--verbose", action="store_true", help="print the full graph state")
    router.add_argument("--thread-id", default=None, help="checkpoint thread (default: new)")
    router.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    crew = sub.add_parser("crew", help="run the CrewAI research crew once (JSON result)")
    crew.add_argument("--topic", required=True, help="what to research")
    crew.add_argument("--verbose", action="store_true", help="print the full trace")
    crew.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    serve = sub.add_parser("serve", help="run a workflow's A2A server (default port 9999)")
    serve.add_argument(
        "--workflow", default=None, help="router or crew (default AGENT_WORKFLOW or router)"
    )
    serve.add_argument("--host", default=None, help="default A2A_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default A2A_PORT or 9999")
    serve.add_argument("--log-level", default="info")
    ask_cmd = sub.add_parser("ask", help="send one question to an A2A server (JSON outcome)")
    ask_cmd.add_argument("--url", default="http://127.0.0.1:9999", help="the server's base URL")
    ask_cmd.add_argument("--query", required=True, help="the question")
    ask_cmd.add_argument("--timeout", type=float, default=300.0, help="seconds per HTTP call")
    ask_cmd.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    _add_beeai_parsers(sub)
    from aistack_agents.bench.cli import add_parser as add_bench_parser

    add_bench_parser(sub)
    args = parser.parse_args(argv)

    if args.command == "bench":
        from aistack_agents.bench.cli import main as bench_main

        return bench_main(args)

    if args.command == "ask":
        # A client only: the server's settings (LLM_URL, ...) do not apply here.
        if not args.query.strip():
            print("aistack-agents ask: --query is empty", file=sys.stderr)
            return 2
        return _ask(args)

    if args.command in ("beeai", "beeai-serve"):
        return _beeai(args)

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"aistack-agents: invalid configuration: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        from aistack_agents.a2a_server import serve as run_server

        overrides = {
            k: v
            for k, v in (
                ("a2a_host", args.host),
                ("a2a_port", args.port),
                ("agent_workflow", args.workflow),
            )
            if v is not None
        }
        if overrides:
            settings = settings.model_copy(update=overrides)
        from aistack_agents.workflow import WorkflowUnavailableError

        if not settings.llm_configured:
            print(f"aistack-agents serve: {NO_LLM_HELP}; serving anyway", file=sys.stderr)
        try:
            run_server(settings, args.log_level)
        except WorkflowUnavailableError as exc:
            print(f"aistack-agents serve: {exc} (--workflow or AGENT_WORKFLOW)", file=sys.stderr)
            return 2
        return 0

    if args.command == "crew":
        if not args.topic.strip():
            print("aistack-agents crew: --topic is empty", file=sys.stderr)
            return 2
        if not settings.llm_configured:
            _print(
                {"topic": args.topic, "error": f"could not run the crew: {NO_LLM_HELP}"},
                args.indent,
            )
            print(f"aistack-agents crew: {NO_LLM_HELP}", file=sys.stderr)
            return 2
        return asyncio.run(_run_crew(settings, args))

    if not args.query.strip():
        print("aistack-agents router: --query is empty", file=sys.stderr)
        return 2
    if not settings.llm_configured:
        _print(
            {"query": args.query, "error": f"could not answer the query: {NO_LLM_HELP}"},
            args.indent,
        )
        print(f"aistack-agents router: {NO_LLM_HELP}", file=sys.stderr)
        return 2
    return asyncio.run(_run_router(settings, args))


if __name__ == "__main__":
    raise SystemExit(main())
