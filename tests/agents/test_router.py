"""The LangGraph query router against a scripted OpenAI-compatible server over loopback and
the real RAG service: every branch of the graph, MCP tools from a real MCP server (the mcp
SDK's FastMCP over loopback, behind a bearer key), the CLI, the Postgres checkpointer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aistack_agents.router import QueryRouter, RouterState, open_checkpointer
from aistack_agents.router.prompts import CLASSIFY_STRICT, QUALITY_STRICT
from aistack_agents.settings import Settings
from aistack_agents.telemetry import setup_tracing
from tests.agents.conftest import (
    AGENTS_VENV,
    RAG_DOCS,
    REPO,
    ScriptedLLM,
    ToolCall,
    serve_in_thread,
)
from tests.conftest import free_port

RAG = '{"classification": "factual", "route": "rag"}'
DIRECT = '{"classification": "creative", "route": "direct"}'


def score(n: int, reason: str = "ok") -> str:
    return json.dumps({"score": n, "reason": reason})


def run(settings: Settings, query: str, **kw: Any) -> RouterState:
    async def go() -> RouterState:
        router = QueryRouter(settings, **kw)
        try:
            return await router.run(query)
        finally:
            await router.close()

    return asyncio.run(go())


def settings_for(llm: ScriptedLLM, rag_url: str | None = None, **kw: Any) -> Settings:
    return Settings(llm_url=llm.url, llm_model="scripted", rag_url=rag_url, **kw)


def test_direct_route_one_span_per_node(llm: ScriptedLLM) -> None:
    spans = InMemorySpanExporter()
    setup_tracing().add_span_processor(SimpleSpanProcessor(spans))
    llm.expect(("classify", DIRECT), ("generate", "Roses are red."), ("quality", score(85)))
    # A RAG URL that nobody serves: the direct route must not touch it.
    state = run(settings_for(llm, f"http://127.0.0.1:{free_port()}"), "Write a short poem")
    llm.done()
    assert (state["classification"], state["route"]) == ("creative", "direct")
    assert state["response"] == "Roses are red."
    assert state["context"] == [] and state["retrieval_error"] is None
    assert (state["quality_score"], state["quality_passed"], state["attempts"]) == (85, True, 1)
    assert state["parse_fallbacks"] == []
    assert [m["node"] for m in state["messages"] if m["role"] == "assistant"] == [
        "classify_query",
        "generate_response",
        "check_quality",
    ]
    # One trace: the run's root span (ends last) and one child per node run.
    *nodes, root = spans.get_finished_spans()
    names = [s.name for s in nodes]
    assert names == ["router.classify_query", "router.generate_response", "router.check_quality"]
    assert nodes[0].attributes["agents.route"] == "direct"
    assert root.name == "router.run" and root.parent is None
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in nodes)
    assert {s.context.trace_id for s in nodes} == {root.context.trace_id}
    assert state["trace_id"] == f"{root.context.trace_id:032x}"
    assert (root.attributes["agents.route"], root.attributes["agents.quality_score"]) == (
        "direct",
        85,
    )


def test_rag_route_with_real_rag_service(llm: ScriptedLLM, rag_url: str) -> None:
    llm.expect(
        ("classify", RAG),
        ("generate", "Longhorn replicates block volumes [1]."),
        ("quality", "```json\n" + score(90) + "\n```"),
    )
    state = run(settings_for(llm, rag_url, rag_top_n=2), "Which component replicates volumes?")
    llm.done()
    assert state["route"] == "rag" and state["retrieval_error"] is None
    assert state["context"][0]["document_id"] == "longhorn"
    assert "Longhorn provides replicated block storage" in state["context"][0]["text"]
    # The LLM saw the numbered passages, and the answer lists the cited sources.
    prompt = llm.of_kind("generate")[0]["body"]["messages"][1]["content"]
    assert "[1] (longhorn#0) Longhorn provides replicated block storage" in prompt
    assert state["response"].startswith("Longhorn replicates block volumes [1].")
    assert "Sources:\n[1] longhorn (chunk 0)" in state["response"]
    assert state["quality_score"] == 90 and state["quality_passed"]


def test_retrieval_down_says_no_context(llm: ScriptedLLM) -> None:
    llm.expect(
        ("classify", RAG), ("generate", "From general knowledge: ..."), ("quality", score(70))
    )
    state = run(settings_for(llm, f"http://127.0.0.1:{free_port()}"), "What stores volumes?")
    llm.done()
    assert state["route"] == "rag" and state["context"] == []
    assert "unreachable" in (state["retrieval_error"] or "")
    assert state["response"].startswith("No context: retrieval failed (")
    assert "Sources:" not in state["response"]
    prompt = llm.of_kind("generate")[0]["body"]["messages"][1]["content"]
    assert "No context passages are available" in prompt and "[1]" not in prompt


def test_unparseable_classification_retries_then_defaults(llm: ScriptedLLM) -> None:
    llm.expect(
        ("classify", "It is a factual question, I think."),
        ("classify", "factual / rag"),
        ("generate", "An answer."),
        ("quality", score(75)),
    )
    state = run(settings_for(llm, None), "What is Longhorn?")
    llm.done()
    retry = llm.of_kind("classify")[1]["body"]["messages"]
    assert retry[-1]["content"] == CLASSIFY_STRICT and retry[-2]["role"] == "assistant"
    assert (state["classification"], state["route"]) == ("factual", "rag")  # the default
    [fallback] = state["parse_fallbacks"]
    assert fallback["node"] == "classify_query" and fallback["outcome"] == "default"
    assert fallback["raw"] == ["It is a factual question, I think.", "factual / rag"]
    assert fallback["used"] == {"classification": "factual", "route": "rag"}
    # No RAG_URL: the rag route says so instead of inventing context.
    assert state["retrieval_error"] == "no RAG service configured (set RAG_URL)"
    assert state["response"].startswith("No context: retrieval failed")


def test_unparseable_score_retried_then_default(llm: ScriptedLLM) -> None:
    llm.expect(
        ("classify", "Sure!"),
        ("classify", DIRECT),
        ("generate", "Blue."),
        ("quality", "Looks great to me"),
        ("quality", '{"score": "high"}'),
    )
    state = run(settings_for(llm), "What colour is the sky?")
    llm.done()
    assert llm.of_kind("quality")[1]["body"]["messages"][-1]["content"] == QUALITY_STRICT
    assert state["route"] == "direct"
    assert (state["quality_score"], state["quality_passed"], state["attempts"]) == (None, False, 1)
    assert [(f["node"], f["outcome"]) for f in state["parse_fallbacks"]] == [
        ("classify_query", "retried"),
        ("check_quality", "default"),
    ]
    assert state["parse_fallbacks"][1]["used"] == {"quality_score": None, "quality_passed": False}


def test_quality_fail_then_regenerate_passes(llm: ScriptedLLM, rag_url: str) -> None:
    llm.expect(
        ("classify", RAG),
        ("generate", "Something about GPUs."),
        ("quality", score(30, "off topic")),
        ("generate", "Longhorn replicates block storage [1]."),
        ("quality", score(80)),
    )
    state = run(settings_for(llm, rag_url), "Which component replicates block storage?")
    llm.done()
    second = llm.of_kind("generate")[1]["body"]["messages"][1]["content"]
    assert "scored 30/100 (off topic)" in second and "Something about GPUs." in second
    assert (state["quality_score"], state["quality_passed"], state["attempts"]) == (80, True, 2)
    assert state["response"].startswith("Longhorn replicates block storage [1].")


def test_threshold_configurable_and_one_regeneration_at_most(llm: ScriptedLLM) -> None:
    llm.expect(
        ("classify", DIRECT),
        ("generate", "v1"),
        ("quality", score(70)),
        ("generate", "v2"),
        ("quality", "70"),
    )
    state = run(settings_for(llm, quality_threshold=75), "Explain time-slicing")
    llm.done()
    assert (state["quality_score"], state["quality_passed"], state["attempts"]) == (70, False, 2)
    assert state["response"] == "v2"


def test_postgres_checkpointer_from_the_cli(llm: ScriptedLLM, pg_dsn: str) -> None:
    llm.expect(("classify", DIRECT), ("generate", "Checkpointed."), ("quality", score(99)))
    proc = _cli("--query", "Say it", "--thread-id", "t-1", LLM_URL=llm.url, CHECKPOINT_DSN=pg_dsn)
    llm.done()
    assert proc.returncode == 0, proc.stderr

    async def stored() -> Any:
        # Another process, a new connection: the run's final state is in PostgreSQL.
        async with open_checkpointer(pg_dsn) as saver:
            router = QueryRouter(settings_for(llm), checkpointer=saver)
            try:
                return await router.graph.aget_state(router.config("t-1"))
            finally:
                await router.close()

    snapshot = asyncio.run(stored())
    assert snapshot.next == ()  # the run finished
    assert snapshot.values["response"] == json.loads(proc.stdout)["response"] == "Checkpointed."
    assert snapshot.values["quality_score"] == 99 and snapshot.values["route"] == "direct"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    ours = ("LLM_URL", "LOCALAI_URL", "RAG_URL", "CHECKPOINT_DSN")
    base = {k: v for k, v in os.environ.items() if k not in ours}
    return subprocess.run(
        [str(AGENTS_VENV / "bin" / "aistack-agents"), "router", *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_json_result_and_verbose_state(llm: ScriptedLLM, rag_url: str) -> None:
    llm.expect(("classify", RAG), ("generate", "GPU time-slicing [1]."), ("quality", score(88)))
    proc = _cli(
        "--query", "How do pods share a GPU?", "--verbose", LLM_URL=llm.url, RAG_URL=rag_url
    )
    llm.done()
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout)
    assert set(RouterState.__annotations__) == set(state)
    assert state["context"][0]["document_id"] == "timeslicing"
    llm.expect(("classify", DIRECT), ("generate", "Hi."), ("quality", score(61)))
    brief = json.loads(_cli("--query", "hello", LLM_URL=llm.url).stdout)
    llm.done()
    assert brief["response"] == "Hi." and brief["quality_passed"] is True
    assert "messages" not in brief and brief["sources"] == []


def test_cli_without_llm_says_how_to_configure() -> None:
    proc = _cli("--query", "anything")
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert "could not answer" in out["error"] and "LLM_URL" in out["error"]
    assert "response" not in out


# -- MCP tools ---------------------------------------------------------------------------------
MCP_KEY = "router-test-key"
GPU_FACT = "gpu-1 has one NVIDIA H200 shared by time-slicing (4 replicas)."


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    """A real MCP server (FastMCP, streamable HTTP) that answers only with the bearer key."""
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("cluster-facts")

    @server.tool()
    def node_fact(node: str) -> str:
        """Hardware facts about a cluster node."""
        if node != "gpu-1":
            raise ValueError(f"unknown node {node}")
        return GPU_FACT

    app = server.streamable_http_app()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        auth = dict(scope.get("headers") or []).get(b"authorization")
        if scope["type"] == "http" and auth != f"Bearer {MCP_KEY}".encode():
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    with serve_in_thread(lambda port: guarded) as url:
        yield f"{url}/mcp"


def test_mcp_tool_result_is_a_numbered_citable_source(
    llm: ScriptedLLM, rag_url: str, mcp_url: str
) -> None:
    llm.expect(
        ("classify", RAG),
        ("generate", ToolCall("mcp_node_fact", {"node": "gpu-1"})),
        ("generate", "Longhorn replicates volumes [1]; gpu-1 has one shared H200 [2]."),
        ("quality", score(90)),
    )
    cfg = settings_for(llm, rag_url, rag_top_n=1, mcp_url=mcp_url, mcp_api_key=MCP_KEY)
    state = run(cfg, "Which component replicates volumes, and what GPU has gpu-1?")
    llm.done()
    assert state["tool_errors"] == []
    rag, tool = state["context"]
    assert rag["metadata"].get("source") != "mcp" and rag["text"] in RAG_DOCS.values()
    assert tool["document_id"] == "mcp:node_fact" and tool["text"] == GPU_FACT
    assert tool["metadata"] == {
        "source": "mcp",
        "tool": "node_fact",
        "arguments": {"node": "gpu-1"},
    }
    # The LLM was offered the server's tool, and read its result back numbered [2].
    first, second = (r["body"] for r in llm.of_kind("generate"))
    assert [t["function"]["name"] for t in first["tools"]] == ["mcp_node_fact"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["node"]
    tool_reply = second["messages"][-1]
    assert tool_reply["role"] == "tool" and tool_reply["content"] == f"[2] {GPU_FACT}"
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "mcp_node_fact"
    assert state["response"].startswith("Longhorn replicates volumes [1]; gpu-1 has")
    assert state["response"].endswith(
        f'Sources:\n[1] {rag["document_id"]} (chunk 0)\n[2] MCP tool node_fact {{"node": "gpu-1"}}'
    )
    # messages[]: the call and its result, in order, then the answer.
    gen = [m for m in state["messages"] if m["node"] == "generate_response"]
    assert [m["role"] for m in gen] == ["system", "user", "assistant", "tool", "assistant"]
    assert gen[2]["tool_calls"] == [
        {"id": gen[3]["tool_call_id"], "name": "mcp_node_fact", "arguments": {"node": "gpu-1"}}
    ]
    # The judge sees the tool's entry as passage [2].
    judge = llm.of_kind("quality")[0]["body"]["messages"][1]["content"]
    assert f'[2] (MCP tool node_fact {{"node": "gpu-1"}}) {GPU_FACT}' in judge


def test_failing_mcp_tool_recorded_and_rounds_capped(llm: ScriptedLLM, mcp_url: str) -> None:
    llm.expect(
        ("classify", DIRECT),
        ("generate", ToolCall("mcp_node_fact", {"node": "cpu-9"})),
        # One round allowed: the next request offers no tools, so an answer comes.
        ("generate", "I could not look up cpu-9."),
        ("quality", score(65)),
    )
    cfg = settings_for(llm, mcp_url=mcp_url, mcp_api_key=MCP_KEY, mcp_max_tool_rounds=1)
    state = run(cfg, "What GPU has cpu-9?")
    llm.done()
    [error] = state["tool_errors"]
    assert error.startswith("tool node_fact reported an error:") and "unknown node cpu-9" in error
    assert state["context"] == []  # nothing invented
    last = llm.of_kind("generate")[1]["body"]
    assert "tools" not in last
    assert last["messages"][-1]["content"].startswith("Tool node_fact reported an error:")
    assert state["response"] == "I could not look up cpu-9."


def test_unreachable_mcp_server_recorded_answer_still_comes(llm: ScriptedLLM) -> None:
    llm.expect(("classify", DIRECT), ("generate", "Blue."), ("quality", score(80)))
    url = f"http://127.0.0.1:{free_port()}/mcp"
    state = run(settings_for(llm, mcp_url=url, mcp_api_key=MCP_KEY), "What colour is the sky?")
    llm.done()
    [error] = state["tool_errors"]
    assert error.startswith(f"MCP server at {url}: ") and "ConnectError" in error
    assert "tools" not in llm.of_kind("generate")[0]["body"]
    assert state["response"] == "Blue." and state["quality_passed"]


def test_mcp_bad_api_key_recorded_as_401(llm: ScriptedLLM, mcp_url: str) -> None:
    llm.expect(("classify", DIRECT), ("generate", "Blue."), ("quality", score(80)))
    state = run(settings_for(llm, mcp_url=mcp_url, mcp_api_key="wrong"), "Sky colour?")
    llm.done()
    [error] = state["tool_errors"]
    assert error.startswith(f"MCP server at {mcp_url}: ") and "401" in error
    assert "tools" not in llm.of_kind("generate")[0]["body"]
    assert state["response"] == "Blue."


def test_readyz_reports_the_mcp_server_without_gating(llm: ScriptedLLM, mcp_url: str) -> None:
    """MCP tools are optional (the router answers without them and records tool_errors), so
    /readyz reports the server's state and stays ready; without MCP_URL there is no entry."""
    from starlette.testclient import TestClient

    from aistack_agents.a2a_server import create_app

    down = f"http://127.0.0.1:{free_port()}/mcp"
    cases: list[tuple[dict[str, Any], list[str] | None]] = [
        ({"mcp_url": mcp_url, "mcp_api_key": MCP_KEY}, ["ok (1 tools)"]),
        (
            {"mcp_url": mcp_url, "mcp_api_key": "wrong"},
            [f"unreachable: MCP server at {mcp_url}: ", "401"],
        ),
        ({"mcp_url": down}, [f"unreachable: MCP server at {down}: ", "ConnectError"]),
        ({}, None),
    ]
    for extra, want in cases:
        with TestClient(create_app(settings_for(llm, **extra), "router")) as client:
            ready = client.get("/readyz")
        checks = ready.json()["checks"]
        assert ready.status_code == 200 and checks["llm"] == "ok", checks
        if want is None:
            assert "mcp" not in checks, checks
        else:
            assert checks["mcp"].startswith(want[0]) and all(w in checks["mcp"] for w in want), (
                checks
            )
