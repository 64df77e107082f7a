"""The benchmark MCP server through the real MCP client (streamable HTTP over loopback): every
tool, auth, bad input, unreachable targets, progress notifications and cancellation, against the
real RAG service and a real guidellm mock-server. Runs in .venv-mcp."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from tests.conftest import free_port, stop

from .conftest import TOKEN, Stack, spawn_mcp_server

pytestmark = pytest.mark.asyncio

TOOLS = {"run_benchmark", "list_benchmarks", "get_report", "rag_query", "rag_ingest"}
TOOLS |= {"list_collections"}


@asynccontextmanager
async def connect(
    url: str, token: str | None = TOKEN, notes: list[Any] | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session; ``notes`` collects every server notification."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def on_message(message: Any) -> None:
        if notes is not None and isinstance(message, types.ServerNotification):
            notes.append(message.root)

    timeout = httpx.Timeout(30, read=300)
    async with (
        httpx.AsyncClient(headers=headers, timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as (read, write, _),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        yield session


def error_text(result: types.CallToolResult) -> str:
    assert result.isError, result
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def partial_dirs(results: Path) -> list[str]:
    return [p.name for p in results.glob(".partial-*")] if results.exists() else []


def run_dirs(results: Path) -> set[str]:
    return {p.name for p in results.iterdir()} if results.exists() else set()


async def test_tools_have_typed_schemas(stack: Stack) -> None:
    async with connect(stack.mcp_url) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.inputSchema["type"] == "object" and tool.outputSchema, tool.name
    run = tools["run_benchmark"].inputSchema["properties"]
    assert run["profile"]["enum"] == ["synchronous", "concurrent", "constant", "poisson", "sweep"]
    assert "ctx" not in run and "max_seconds" in run and "slo" in run
    assert "runs" in tools["list_benchmarks"].outputSchema["properties"]
    assert "sources" in tools["rag_query"].outputSchema["properties"]


async def test_auth_on_mcp_only(stack: Stack) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await http.post(stack.mcp_url, json=init, headers=headers)
        wrong = await http.post(
            stack.mcp_url, json=init, headers={**headers, "Authorization": "Bearer nope"}
        )
        health = await http.get(f"{stack.mcp.url}/healthz")
        metrics = await http.get(f"{stack.mcp.url}/metrics")
    assert missing.status_code == 401 and wrong.status_code == 401
    assert "missing bearer token" in missing.json()["error_description"]
    assert "invalid bearer token" in wrong.json()["error_description"]
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert health.status_code == 200 and health.json()["auth"] is True
    assert metrics.status_code == 200 and "mcp_tool_calls_total" in metrics.text
    # the real client with a wrong token fails instead of hanging
    with pytest.raises(BaseExceptionGroup) as info:
        async with asyncio.timeout(30), connect(stack.mcp_url, token="nope") as s:
            await s.list_tools()
    assert any(
        isinstance(e, httpx.HTTPStatusError) and e.response.status_code == 401
        for e in leaves(info.value)
    ), info.value


async def test_rag_tools_through_the_http_api(stack: Stack) -> None:
    text = "The MCP gateway routes every tool call of Llama Stack to the registered MCP servers."
    args = {"text": text, "document_id": "mcp-gateway", "collection": "mcp_tests"}
    async with connect(stack.mcp_url) as s:
        first = await s.call_tool("rag_ingest", {**args, "metadata": {"source": "test"}})
        again = await s.call_tool("rag_ingest", {**args, "metadata": {"source": "test"}})
        listed = await s.call_tool("list_collections", {})
        answer = await s.call_tool(
            "rag_query",
            {"query": "What routes tool calls?", "collection": "mcp_tests", "generate": False},
        )
        extractive = await s.call_tool(
            "rag_query", {"query": "Which servers get tool calls?", "collection": "mcp_tests"}
        )
        bad = await s.call_tool("rag_ingest", {"text": text, "collection": "no spaces/allowed"})
        unknown = await s.call_tool("rag_query", {"query": "x", "collection": "never_created"})
    assert not first.isError, first
    assert first.structuredContent["status"] == "created"
    assert first.structuredContent["chunks_created"] >= 1
    assert again.structuredContent["status"] == "unchanged"
    collections = {c["name"]: c["chunks"] for c in listed.structuredContent["collections"]}
    assert collections["mcp_tests"] >= 1
    sources = answer.structuredContent["sources"]
    assert sources[0]["document_id"] == "mcp-gateway"
    assert sources[0]["metadata"] == {"source": "test"}
    assert answer.structuredContent["answer_mode"] == "none"
    # no LLM configured in the RAG service: an extractive answer citing the document
    assert extractive.structuredContent["answer_mode"] == "extractive"
    assert "[1]" in extractive.structuredContent["answer"]
    # the service's own validation message comes back as a tool error
    assert re.search(r"RAG service answered POST /ingest with 422: collection", error_text(bad))
    assert "404" in error_text(unknown)


async def test_run_benchmark_progress_reports_and_resources(stack: Stack) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    args = {
        "concurrency": 2,
        "max_requests": 48,
        "prompt_tokens": 32,
        "output_tokens": 16,
        "slo": {"error_rate": 0, "ttft_p95_ms": 5000},
        "label": "smoke",
    }
    async with connect(stack.mcp_url) as s:
        result = await s.call_tool("run_benchmark", args, progress_callback=on_progress)
        assert not result.isError, error_text(result)
        run = result.structuredContent
        listed = (await s.call_tool("list_benchmarks", {})).structuredContent
        report = (await s.call_tool("get_report", {"run_id": run["run_id"]})).structuredContent
        html = await s.read_resource(run["html_report_uri"])
        full = await s.read_resource(run["json_report_uri"])
        resources = {str(r.uri) for r in (await s.list_resources()).resources}
        templates = {t.uriTemplate for t in (await s.list_resource_templates()).resourceTemplates}
    assert run["model"] == "mock-llm" and run["target_url"].startswith(stack.llm.url)
    assert run["label"] == "smoke" and run["profile"] == "concurrent"
    assert run["stats"]["successful"] == 48 and run["stats"]["errored"] == 0
    assert run["slo_passed"] is True and run["slo_violations"] == []
    assert run["phases"][0]["name"] == "concurrent@2" and run["phases"][0]["successful"] == 48
    assert {"llm_benchmark.html", "llm_benchmark.json", "summary.json"} <= set(run["files"])
    # progress: a start, ~1/s while running, each phase's end and the last; never decreasing
    values = [v for v, _t, _m in progress]
    assert len(progress) >= 3 and values == sorted(values), progress
    assert values[-1] == 48 and {t for _v, t, _m in progress} == {48.0}
    assert any("concurrent@2" in (m or "") for _v, _t, m in progress)
    # reports on the results volume, nothing partial
    folder = stack.results / run["run_id"]
    assert (folder / "llm_benchmark.html").is_file()
    assert json.loads((folder / "summary.json").read_text())["run_id"] == run["run_id"]
    assert partial_dirs(stack.results) == []
    assert run["run_id"] in [r["run_id"] for r in listed["runs"]]
    assert report == run
    page = html.contents[0]
    assert page.mimeType == "text/html" and "<html" in page.text.lower()
    engine_report = json.loads(full.contents[0].text)
    assert engine_report["metrics"]["successful"] == 48
    assert engine_report["config"]["report_dir"] == str(folder)  # not the partial folder
    assert run["html_report_uri"] in resources
    assert "benchmark://runs/{run_id}/llm_benchmark.html" in templates


async def test_bad_input_is_a_tool_error(stack: Stack) -> None:
    async with connect(stack.mcp_url) as s:
        wrong_type = await s.call_tool("run_benchmark", {"concurrency": "lots", "max_requests": 1})
        unknown_arg = await s.call_tool("run_benchmark", {"concurency": 2, "max_requests": 1})
        bad_combo = await s.call_tool("run_benchmark", {"profile": "constant", "max_requests": 1})
        bad_slo = await s.call_tool(
            "run_benchmark", {"concurrency": 1, "max_requests": 1, "slo": {"fast": 1}}
        )
        unbounded = await s.call_tool("run_benchmark", {"concurrency": 1})
        traversal = await s.call_tool("get_report", {"run_id": "../etc"})
        missing = await s.call_tool("get_report", {"run_id": "no-such-run"})
        no_query = await s.call_tool("rag_query", {})
        with pytest.raises(McpError, match="no-such-run"):
            await s.read_resource("benchmark://runs/no-such-run/llm_benchmark.html")
        # the session survives all of it
        still = await s.call_tool("list_benchmarks", {"limit": 1})
    assert re.search(
        r"invalid arguments for run_benchmark: concurrency: .*integer", error_text(wrong_type)
    )
    assert "unknown argument(s) concurency" in error_text(unknown_arg)
    assert "profile constant requires rate" in error_text(bad_combo)
    assert "unknown slo key 'fast'" in error_text(bad_slo)
    assert "max_requests and/or max_seconds" in error_text(unbounded)
    assert "invalid run_id '../etc'" in error_text(traversal)
    assert "no benchmark run 'no-such-run'" in error_text(missing)
    assert "query: Field required" in error_text(no_query)
    assert not still.isError


async def test_unreachable_llm_is_reported(stack: Stack) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    async with connect(stack.mcp_url) as s:
        result = await s.call_tool(
            "run_benchmark", {"target_url": dead, "max_requests": 2, "concurrency": 1}
        )
    text = error_text(result)
    assert "unreachable" in text and dead in text, text
    assert partial_dirs(stack.results) == []


async def test_cancel_stops_the_load_and_keeps_nothing(stack: Stack) -> None:
    notes: list[Any] = []
    runs_before = run_dirs(stack.results)
    async with connect(stack.mcp_url, notes=notes) as s:
        progressed = asyncio.Event()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            if value > 0:
                progressed.set()

        call = asyncio.create_task(
            s.call_tool(
                "run_benchmark",
                {"concurrency": 2, "max_seconds": 120, "output_tokens": 16},
                progress_callback=on_progress,
            )
        )
        await asyncio.wait_for(progressed.wait(), 30)
        # one benchmark at a time: a second one is refused, naming the running one
        busy = await s.call_tool("run_benchmark", {"concurrency": 1, "max_requests": 1})
        async with httpx.AsyncClient(timeout=10) as http:
            running = (await http.get(f"{stack.mcp.url}/healthz")).json()["benchmark_running"]
        assert running and f"benchmark {running} is running" in error_text(busy)
        token = next(
            n.params.progressToken for n in notes if isinstance(n, types.ProgressNotification)
        )
        t0 = time.monotonic()
        await s.send_notification(
            types.ClientNotification(
                types.CancelledNotification(
                    params=types.CancelledNotificationParams(requestId=token, reason="test")
                )
            )
        )
        with pytest.raises(McpError, match="cancelled"):
            await asyncio.wait_for(call, 30)
        async with httpx.AsyncClient(timeout=10) as http:
            while (await http.get(f"{stack.mcp.url}/healthz")).json()["benchmark_running"]:
                assert time.monotonic() - t0 < 10, "the run did not stop"
                await asyncio.sleep(0.05)
            stopped_in = time.monotonic() - t0
            sent = stack.llm.requests_received()
            assert sent > 0
            await asyncio.sleep(1.0)
            assert stack.llm.requests_received() == sent, "load continued after the cancel"
            metrics = (await http.get(f"{stack.mcp.url}/metrics")).text
        # the server answers the next call on the same session, and nothing was kept
        after = await s.call_tool("list_benchmarks", {})
    assert stopped_in < 5, stopped_in
    assert not after.isError
    assert run_dirs(stack.results) == runs_before
    assert partial_dirs(stack.results) == []
    assert 'mcp_tool_calls_total{outcome="cancelled",tool="run_benchmark"} 1.0' in metrics
    assert "mcp_benchmark_runs_in_progress 0.0" in metrics


async def test_refuses_to_start_without_a_token_unless_allowed(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "aistack-mcp-benchmark"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RESULTS_DIR": str(tmp_path)}
    refused = subprocess.run(
        [str(exe), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and "MCP_AUTH_TOKEN is not set" in refused.stderr
    # --allow-no-auth: starts, warns loudly; RAG and LLM down -> tool errors saying so
    dead_rag = f"http://127.0.0.1:{free_port()}"
    server = spawn_mcp_server(tmp_path, {"RAG_URL": dead_rag}, "--allow-no-auth")
    try:
        server.wait(60)
        async with connect(f"{server.url}/mcp", token=None) as s:
            query = await s.call_tool("rag_query", {"query": "anything"})
            collections = await s.call_tool("list_collections", {})
            no_target = await s.call_tool("run_benchmark", {"concurrency": 1, "max_requests": 1})
    finally:
        stop(server.proc)
    assert "/mcp is OPEN" in server.log.read_text()
    assert f"RAG service unreachable at {dead_rag}" in error_text(query)
    assert f"RAG service unreachable at {dead_rag}" in error_text(collections)
    assert "no benchmark target: pass target_url or set LLM_BASE_URL" in error_text(no_target)
