"""The lab's BeeAI agent (runs in .venv-beeai, see test_in_side_venvs.py): the beeai-framework
agent against the scripted OpenAI-compatible server (tool calls) and the real RAG service, a
real MCP server over loopback, and its A2A server (uvicorn on loopback) called by the project's
A2A client (`aistack-agents ask` from .venv-agents) with the agent card validated, and without
an LLM."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from a2a.types import AgentCard
from starlette.types import ASGIApp

from aistack_agents.beeai.agent import AgentFailedError, BeeAIRuntime, summary
from aistack_agents.beeai.server import create_app
from aistack_agents.beeai.settings import BeeAISettings
from tests.agents.conftest import AGENTS_VENV, REPO, ScriptedLLM, ToolCall, serve_in_thread
from tests.conftest import free_port

BEEAI_VENV = REPO / ".venv-beeai"
QUESTION = "Which component replicates volumes?"
SEARCH = ToolCall("rag_search", {"query": "replicated block storage volumes"})


def settings(llm: ScriptedLLM | None, rag_url: str | None, **extra: Any) -> BeeAISettings:
    # Explicit values: whatever the environment says about LLM/RAG/MCP must not leak in.
    return BeeAISettings(
        llm_url=llm.url if llm else None,
        llm_model="scripted",
        rag_url=rag_url,
        mcp_url=extra.pop("mcp_url", None),
        **extra,
    )


def run(cfg: BeeAISettings, query: str = QUESTION) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        runtime = BeeAIRuntime(cfg)
        await runtime.start()
        try:
            result = await runtime.run(query)
            result["mcp_status"] = runtime.mcp_status()
            return result
        finally:
            await runtime.close()

    return asyncio.run(go())


def tool_messages(llm: ScriptedLLM, index: int) -> list[str]:
    """The tool outputs the agent sent back to the LLM in its ``index``-th request."""
    body = llm.requests[index]["body"]
    return [str(m.get("content")) for m in body["messages"] if m.get("role") == "tool"]


# -- the agent ------------------------------------------------------------------------------


def test_rag_tool_call_answers_with_the_real_sources(llm: ScriptedLLM, rag_url: str) -> None:
    llm.expect(("beeai", SEARCH), ("beeai", "Longhorn replicates the volumes [1]."))
    result = run(settings(llm, rag_url))
    llm.done()
    # Step 1 is forced to search the knowledge base (tool_choice names the RAG tool).
    first = llm.requests[0]["body"]
    assert first["tool_choice"]["function"]["name"] == "rag_search"
    # The real RAG service's passage went back to the model, numbered as cited.
    [fed_back] = tool_messages(llm, 1)
    assert "[1] (longhorn#0) Longhorn provides replicated block storage" in fed_back
    assert result["sources"][0]["document_id"] == "longhorn"
    assert result["retrieval_error"] is None
    assert result["answer"].startswith("Longhorn replicates the volumes [1].")
    assert "\n\nSources:\n[1] longhorn (chunk 0" in result["answer"]
    assert result["tools_used"] == ["rag_search"]
    assert result["usage"]["prompt_tokens"] > 0 and result["usage"]["completion_tokens"] > 0
    brief = summary(result)
    assert set(brief) == {
        "query",
        "answer",
        "sources",
        "retrieval_error",
        "tools_used",
        "iterations",
        "usage",
    }
    assert "text" not in brief["sources"][0]
    # --verbose: the whole run, JSON-safe, incl. the tool call and its result in the messages.
    verbose = json.loads(json.dumps(summary(result, verbose=True)))
    assert verbose["steps"][0] == {
        "tool": "rag_search",
        "input": {"query": "replicated block storage volumes"},
        "output": fed_back,
        "error": None,
    }
    assert "Longhorn provides replicated block storage" in json.dumps(verbose["messages"])


def test_rag_down_is_reported_not_invented(llm: ScriptedLLM) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    llm.expect(("beeai", SEARCH), ("beeai", "I could not search the knowledge base."))
    result = run(settings(llm, down))
    llm.done()
    [fed_back] = tool_messages(llm, 1)
    assert fed_back.startswith("Retrieval failed: RAG service at") and "unreachable" in fed_back
    assert result["sources"] == []
    assert "unreachable" in result["retrieval_error"]
    assert result["answer"].startswith("No context: retrieval failed (RAG service at")
    assert "Sources:" not in result["answer"]


def test_llm_error_is_reported(llm: ScriptedLLM) -> None:
    llm.expect()  # every request gets a 500 from the scripted server
    with pytest.raises(AgentFailedError, match="no scripted reply left"):
        run(settings(llm, None))
    assert llm.requests, "the agent never asked the LLM"


def test_mcp_tools_are_offered_and_called(llm: ScriptedLLM) -> None:
    from mcp.server.fastmcp import FastMCP

    mcp = FastMCP("lab-tools")

    @mcp.tool()
    def gpu_inventory(node: str) -> str:
        """How many GPUs a node has."""
        return f"node {node}: 2 x H100"

    with serve_in_thread(lambda port: mcp.streamable_http_app()) as url:
        llm.expect(
            ("beeai", SEARCH),
            ("beeai", ToolCall("gpu_inventory", {"node": "gpu-1"})),
            ("beeai", "gpu-1 has two H100 GPUs."),
        )
        result = run(settings(llm, None, mcp_url=f"{url}/mcp"), "How many GPUs has gpu-1?")
    llm.done()
    offered = [t["function"]["name"] for t in llm.requests[1]["body"]["tools"]]
    assert "gpu_inventory" in offered and "rag_search" in offered
    assert any("node gpu-1: 2 x H100" in m for m in tool_messages(llm, 2))
    assert result["tools_used"] == ["rag_search", "gpu_inventory"]
    assert result["mcp_status"] == "ok (1 tools)"
    # No RAG service configured: reported in the answer, not papered over.
    assert result["answer"].startswith("No context: retrieval failed (no RAG service configured")


def test_unreachable_mcp_server_is_reported(llm: ScriptedLLM) -> None:
    llm.expect(("beeai", SEARCH), ("beeai", "No GPUs known."))
    result = run(settings(llm, None, mcp_url=f"http://127.0.0.1:{free_port()}/mcp"))
    llm.done()
    assert result["mcp_status"].startswith("unavailable: MCP server at http://127.0.0.1:")
    assert [t["function"]["name"] for t in llm.requests[0]["body"]["tools"]] == ["rag_search"]


def test_nothing_is_fetched_at_import() -> None:
    """litellm (beeai-framework's model layer) downloads its model cost map on import unless told
    otherwise; importing the agent package tells it to use the bundled copy."""
    from litellm.litellm_core_utils import get_model_cost_map

    info = vars(get_model_cost_map._cost_map_source_info)
    assert info["source"] == "local" and info["is_env_forced"] is True, info
    assert info["url"] is None and info["fallback_reason"] is None, info


def test_cli_without_llm_says_which_variables_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_URL", "LOCALAI_URL")}
    proc = subprocess.run(
        [str(BEEAI_VENV / "bin" / "aistack-agents"), "beeai", "--query", QUESTION],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    out = json.loads(proc.stdout)
    assert out["query"] == QUESTION
    assert "no LLM is configured: set LLM_URL" in out["error"] and "LLM_MODEL" in out["error"]
    assert "answer" not in out


# -- the A2A server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(scripted_llm: ScriptedLLM, rag_url: str) -> Iterator[str]:
    """The A2A server (what `aistack-agents beeai-serve` runs) on loopback, wired to the scripted
    LLM and the RAG service; in this process, so beeai-framework is imported once."""

    def make_app(port: int) -> ASGIApp:
        return create_app(settings(scripted_llm, rag_url, a2a_port=port))

    with serve_in_thread(make_app) as url:
        yield url


def ask(url: str, query: str = QUESTION) -> tuple[int, dict[str, Any]]:
    """The project's A2A client (a2a-sdk 1.x, from .venv-agents) against this 0.3 server."""
    exe = AGENTS_VENV / "bin" / "aistack-agents"
    if not exe.exists():
        pytest.skip("run `make agents` first (.venv-agents has the project's A2A client)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(exe), "ask", "--url", url, "--query", query, "--timeout", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_agent_card_validates(server: str) -> None:
    raw = httpx.get(f"{server}/.well-known/agent-card.json", timeout=10).json()
    card = AgentCard.model_validate(raw)  # a2a-sdk 0.3 schema, what beeai-framework speaks
    assert card.name == "aistack-beeai-agent"
    assert card.url == f"http://127.0.0.1:{server.rsplit(':', 1)[1]}/"
    assert card.capabilities.streaming is True
    assert card.preferred_transport == "JSONRPC"
    assert [s.id for s in card.skills] == ["lab-knowledge-qa"]


def test_ask_gets_the_answer_with_sources(server: str, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.expect(("beeai", SEARCH), ("beeai", "Longhorn replicates the volumes [1]."))
    rc, out = ask(server)
    scripted_llm.done()
    assert rc == 0, out
    assert out["state"] == "completed"
    assert out["answer"].startswith("Longhorn replicates the volumes [1].")
    assert "Sources:\n[1] longhorn" in out["answer"]
    assert out["result"]["sources"][0]["document_id"] == "longhorn"
    assert out["result"]["tools_used"] == ["rag_search"]


def test_streaming_reports_the_steps(server: str, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.expect(("beeai", SEARCH), ("beeai", "Longhorn [1]."))
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/stream",
        "params": {
            "message": {
                "kind": "message",
                "messageId": "m-stream",
                "role": "user",
                "parts": [{"kind": "text", "text": QUESTION}],
            }
        },
    }
    events = []
    with httpx.stream("POST", f"{server}/", json=request, timeout=60) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:])["result"])
    scripted_llm.done()
    states = [e["status"]["state"] for e in events if e.get("kind") == "status-update"]
    assert states[0] == "submitted" and states[-1] == "completed"
    # beeai-framework's trajectory: the RAG tool call and its result as working updates.
    working = json.dumps([e for e in events if e.get("status", {}).get("state") == "working"])
    assert "rag_search" in working and "Longhorn provides replicated block storage" in working
    [artifact] = [e for e in events if e.get("kind") == "artifact-update"]
    assert artifact["artifact"]["parts"][0]["text"].startswith("Longhorn [1].")


def metric(server: str, sample: str) -> float:
    """One sample's value from /metrics (0 when absent)."""
    for line in httpx.get(f"{server}/metrics", timeout=10).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def test_health_ready_metrics(server: str, scripted_llm: ScriptedLLM) -> None:
    assert httpx.get(f"{server}/healthz", timeout=10).json()["workflow"] == "beeai"
    ready = httpx.get(f"{server}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["llm"] == "ok" and checks["rag"] == "ok"
    assert checks["mcp"] == "not configured (MCP_URL)"
    samples = (
        'agents_runs_total{outcome="ok",route="rag",workflow="beeai"}',
        'agents_node_duration_seconds_count{node="rag_search",workflow="beeai"}',
        'agents_node_duration_seconds_count{node="agent",workflow="beeai"}',
    )
    tokens = 'agents_llm_tokens_total{kind="completion",node="agent",workflow="beeai"}'
    before = [metric(server, s) for s in (*samples, tokens)]
    scripted_llm.expect(("beeai", SEARCH), ("beeai", "Longhorn [1]."))
    assert ask(server)[0] == 0
    scripted_llm.done()
    after = [metric(server, s) for s in (*samples, tokens)]
    assert [a - b for a, b in zip(after[:3], before[:3], strict=True)] == [1, 1, 1]
    assert after[3] > before[3]


def test_without_llm_every_message_fails_with_how_to_configure() -> None:
    # The card announces the server's URL, which the client then calls: the port must match.
    with serve_in_thread(lambda port: create_app(settings(None, None, a2a_port=port))) as url:
        ready = httpx.get(f"{url}/readyz", timeout=10)
        rc, out = ask(url)
    assert ready.status_code == 503
    assert "not configured: no LLM is configured" in ready.json()["checks"]["llm"]
    assert rc == 2, out
    assert out["state"] == "failed"
    assert out["answer"] is None
    assert "no LLM is configured: set LLM_URL" in out["message"]
