"""Command line: ``aistack-agents router --query Q [--verbose]`` and ``aistack-agents serve``.

The router prints one JSON object on stdout: the result (the full state with --verbose), or
{"error": ...} with exit status 2 when no LLM is configured and 1 when the LLM failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from pydantic import ValidationError

from aistack_agents.settings import NO_LLM_HELP, Settings


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aistack-agents", description="aistack agents")
    sub = parser.add_subparsers(dest="command", required=True)
    router = sub.add_parser("router", help="run the LangGraph query router once (JSON result)")
    router.add_argument("--query", required=True, help="the question")
    router.add_argument("--verbose", action="store_true", help="print the full graph state")
    router.add_argument("--thread-id", default=None, help="checkpoint thread (default: new)")
    router.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    serve = sub.add_parser("serve", help="run the router's A2A server (default port 9999)")
    serve.add_argument("--host", default=None, help="default A2A_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default A2A_PORT or 9999")
    serve.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"aistack-agents: invalid configuration: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        from aistack_agents.a2a_server import serve as run_server

        overrides = {
            k: v for k, v in (("a2a_host", args.host), ("a2a_port", args.port)) if v is not None
        }
        if overrides:
            settings = settings.model_copy(update=overrides)
        if not settings.llm_configured:
            print(f"aistack-agents serve: {NO_LLM_HELP}; serving anyway", file=sys.stderr)
        run_server(settings, args.log_level)
        return 0

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
