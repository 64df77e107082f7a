"""The CrewAI research crew (runs in .venv-crew, see test_in_side_venvs.py) against real parts:
the scripted OpenAI-compatible server over loopback (one script of replies per test, told apart
by each role's system prompt), the real RAG service (embedded Qdrant, two documents), the crew's
A2A server as a subprocess called by `aistack-agents ask`, and a real `guidellm mock-server`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.compat.v0_3.types import AgentCard as AgentCardV03
from a2a.types import AgentCard
from a2a.utils.proto_utils import validate_proto_required_fields
from google.protobuf.json_format import ParseDict
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

# CrewAI's kickoff file (XDG_DATA_HOME/aistack-crew) goes to a temporary folder, not $HOME; the
# A2A server and CLI subprocesses inherit it.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="agents-crew-data-")

from aistack_agents.crew.crew import CrewRun, KnowledgeBaseTool, ResearchCrew
from aistack_agents.crew.verdict import DEFAULT_VERDICT, parse_verdict
from aistack_agents.llm import LLMError
from aistack_agents.settings import Settings
from aistack_agents.telemetry import setup_tracing
from tests.agents.conftest import CREW_VENV, RAG_DOCS, ScriptedLLM, ToolCall
from tests.conftest import free_port, stop, wait_http

NOTES = "- Longhorn replicates block volumes [1].\n- Time-slicing shares a GPU [2]."
REPORT = "Longhorn keeps replicated volumes [1]; time-slicing lets pods share one GPU [2]."
APPROVE = '{"score": 88, "issues": [], "approved": true}'
TOPIC = "How do storage replication and GPU sharing work?"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    setup_tracing().add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def run_crew(llm_url: str, rag_url: str | None, topic: str = TOPIC, **extra: str) -> CrewRun:
    settings = Settings(llm_url=llm_url, llm_model="scripted", rag_url=rag_url, **extra)

    async def go() -> CrewRun:
        crew = ResearchCrew(settings)
        try:
            return await crew.run(topic)
        finally:
            await crew.close()

    return asyncio.run(go())


def user_text(request: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content") or "") for m in request["body"]["messages"] if m["role"] != "system"
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_three_steps_on_real_sources(
    llm: ScriptedLLM, rag_url: str, spans: InMemorySpanExporter
) -> None:
    approved_before = metric("agents_quality_checks_total", workflow="crew", passed="true")
    spans.clear()
    llm.expect(("research", NOTES), ("write", REPORT), ("review", APPROVE))
    run = run_crew(llm.url, rag_url)
    llm.done()
    [research], [write], [review] = (llm.of_kind(k) for k in ("research", "write", "review"))
    # The researcher got the RAG service's real passages, numbered for citations...
    for text in RAG_DOCS.values():
        assert text in user_text(research)
    assert {s["document_id"] for s in run.sources} == set(RAG_DOCS)
    # ...and its tool (OpenAI function calling) for further queries.
    assert [t["function"]["name"] for t in research["body"]["tools"]] == ["search_knowledge_base"]
    # Each step's output is passed on: the writer gets the notes, the reviewer notes and report.
    assert NOTES in user_text(write)
    assert NOTES in user_text(review) and REPORT in user_text(review)
    summary = run.summary()
    assert summary["report"] == REPORT and summary["retrieval_error"] is None
    assert summary["verdict"] == {"score": 88, "issues": [], "approved": True}
    assert summary["parse_fallbacks"] == []
    assert [s["step"] for s in summary["steps"]] == ["retrieve", "research", "write", "review"]
    assert all(s["prompt_tokens"] > 0 and s["completion_tokens"] > 0 for s in summary["steps"][1:])
    # Metrics and one span per step, children of the run's span.
    assert metric("agents_quality_checks_total", workflow="crew", passed="true") == (
        approved_before + 1
    )
    assert metric("agents_node_duration_seconds_count", workflow="crew", node="write") >= 1
    assert metric("agents_llm_tokens_total", workflow="crew", node="review", kind="prompt") > 0
    by_name = {s.name: s for s in spans.get_finished_spans()}
    root = by_name["crew.run"]
    for step in ("crew.retrieve", "crew.research", "crew.write", "crew.review"):
        assert by_name[step].parent is not None
        assert by_name[step].parent.span_id == root.context.span_id
    assert by_name["crew.research"].end_time <= by_name["crew.write"].start_time


def test_researcher_calls_the_rag_tool(llm: ScriptedLLM, rag_url: str) -> None:
    """The model asks for a search: the tool queries the real RAG service and the passages
    (numbered after those given up front) come back to the researcher."""
    llm.expect(
        ("research", ToolCall("search_knowledge_base", {"query": "GPU sharing on one node"})),
        ("research", NOTES),
        ("write", REPORT),
        ("review", APPROVE),
    )
    run = run_crew(llm.url, rag_url)
    llm.done()
    second = llm.of_kind("research")[1]["body"]["messages"]
    tool_replies = [m for m in second if m["role"] == "tool"]
    assert tool_replies and RAG_DOCS["timeslicing"] in tool_replies[0]["content"]
    assert run.summary()["verdict"]["approved"] is True


def test_unparseable_verdict_retried_then_parsed(llm: ScriptedLLM, rag_url: str) -> None:
    llm.expect(
        ("research", NOTES),
        ("write", REPORT),
        ("review", "The report looks solid to me."),
        ("review", '```json\n{"score": 71, "issues": ["cite [2] twice"], "approved": true}\n```'),
    )
    run = run_crew(llm.url, rag_url)
    llm.done()
    retry = llm.of_kind("review")[1]["body"]["messages"]
    assert "not valid JSON" in retry[0]["content"] and REPORT in retry[1]["content"]
    assert run.verdict.score == 71 and run.verdict.issues == ["cite [2] twice"]
    [fallback] = run.summary()["parse_fallbacks"]
    assert fallback["outcome"] == "retried" and fallback["used"]["score"] == 71


def test_unparseable_verdict_twice_gives_the_default(llm: ScriptedLLM, rag_url: str) -> None:
    llm.expect(
        ("research", NOTES),
        ("write", REPORT),
        ("review", "Fine."),
        ("review", '{"score": 140, "approved": "yes"}'),  # JSON, but not a valid verdict
    )
    run = run_crew(llm.url, rag_url)
    llm.done()
    assert run.verdict == DEFAULT_VERDICT and run.summary()["approved"] is False
    [fallback] = run.trace()["parse_fallbacks"]
    assert fallback["outcome"] == "default"
    assert fallback["raw"] == ["Fine.", '{"score": 140, "approved": "yes"}']


def test_rag_down_says_retrieval_error_and_invents_nothing(llm: ScriptedLLM) -> None:
    llm.expect(
        ("research", "No context: the knowledge base could not be searched."),
        ("write", "No context was available: this report has no sources."),
        ("review", '{"score": 20, "issues": ["no sources"], "approved": false}'),
    )
    down = f"http://127.0.0.1:{free_port()}"
    run = run_crew(llm.url, down)
    llm.done()
    summary = run.summary()
    assert summary["retrieval_error"] and "unreachable" in summary["retrieval_error"]
    assert summary["sources"] == [] and summary["approved"] is False
    prompt = user_text(llm.of_kind("research")[0])
    assert "could not be searched" in prompt and "NO context" in prompt
    for request in llm.requests:  # no passage reached any role
        assert not any(text in user_text(request) for text in RAG_DOCS.values())


MCP_SERVER = """
import sys
from mcp.server.fastmcp import FastMCP

mcp = FastMCP("cluster-facts", host="127.0.0.1", port=int(sys.argv[1]))


@mcp.tool()
def node_fact(topic: str) -> str:
    \"\"\"A fact about the cluster's node for a topic.\"\"\"
    return f"MCP fact: the node has one GPU shared by time-slicing ({topic})."


mcp.run("streamable-http")
"""


def test_researcher_gets_and_calls_mcp_tools(llm: ScriptedLLM, rag_url: str) -> None:
    """With MCP_URL the researcher gets the tools of a real MCP server (the mcp SDK's FastMCP,
    streamable HTTP on loopback) next to the RAG tool, and a call reaches that server."""
    port = free_port()
    server = subprocess.Popen(
        [str(CREW_VENV / "bin" / "python"), "-c", MCP_SERVER, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    name = "mcp_node_fact"  # aistack_agents.crew.mcp_tools: mcp_<the server's tool name>
    try:
        wait_http(f"http://127.0.0.1:{port}/mcp", server, 60)
        llm.expect(
            ("research", ToolCall(name, {"topic": "GPU sharing"})),
            ("research", NOTES),
            ("write", REPORT),
            ("review", APPROVE),
        )
        mcp_url = f"http://127.0.0.1:{port}/mcp"
        run = run_crew(llm.url, rag_url, mcp_url=mcp_url)
    finally:
        stop(server)
    llm.done()
    first, second = (r["body"] for r in llm.of_kind("research"))
    assert [t["function"]["name"] for t in first["tools"]] == ["search_knowledge_base", name]
    tool_replies = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_replies and "MCP fact: the node has one GPU" in tool_replies[0]["content"]
    assert run.trace()["mcp_url"] == mcp_url and run.verdict.approved


def test_llm_down_is_an_llm_error(rag_url: str) -> None:
    """An unreachable LLM fails the run with LLMError (CLI exit 1, A2A task failed), counted."""
    before = metric("agents_runs_total", workflow="crew", route="unknown", outcome="llm_error")
    with pytest.raises(LLMError, match="the crew failed"):
        run_crew(f"http://127.0.0.1:{free_port()}/v1", rag_url)
    assert (
        metric("agents_runs_total", workflow="crew", route="unknown", outcome="llm_error")
        == before + 1
    )


def test_tool_and_verdict_parsing_directly(rag_url: str) -> None:
    tool = KnowledgeBaseTool(settings=Settings(rag_url=rag_url))
    found = tool._run("replicated block storage")
    assert "[1] (longhorn#0)" in found and RAG_DOCS["longhorn"] in found
    down = KnowledgeBaseTool(settings=Settings(rag_url=f"http://127.0.0.1:{free_port()}"))
    assert down._run("anything").startswith("Retrieval failed:") and down.sources == []
    assert parse_verdict('ok {"score": 0, "approved": false}') is not None
    for bad in ("", "88", '{"score": true, "approved": true}', '{"approved": true}'):
        assert parse_verdict(bad) is None, bad


def crew_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("LLM_URL", "LOCALAI_URL", "RAG_URL")}
    return subprocess.run(
        [str(CREW_VENV / "bin" / "aistack-agents"), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_cli_without_llm_says_which_variables() -> None:
    proc = crew_cli("crew", "--topic", TOPIC)
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert out["topic"] == TOPIC and "LLM_URL" in out["error"] and "LLM_MODEL" in out["error"]


# -- the crew's A2A server -------------------------------------------------------------------


def start_server(**env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if k not in ("LLM_URL", "LOCALAI_URL", "RAG_URL")}
    log = Path(tempfile.mkdtemp(prefix="agents-crew-a2a-")) / "a2a.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(CREW_VENV / "bin" / "aistack-agents"), "serve", "--port", str(port)],
            env={**base, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc, 120)  # log: see a2a.log
    return proc, url


@pytest.fixture(scope="module")
def server(scripted_llm: ScriptedLLM, rag_url: str) -> Iterator[str]:
    # The workflow by its environment variable (the Deployment uses --workflow crew).
    proc, url = start_server(
        AGENT_WORKFLOW="crew", LLM_URL=scripted_llm.url, LLM_MODEL="scripted", RAG_URL=rag_url
    )
    yield url
    stop(proc)


def test_a2a_card_ask_and_metrics(server: str, scripted_llm: ScriptedLLM) -> None:
    card = httpx.get(f"{server}/.well-known/agent-card.json").json()
    proto = ParseDict(card, AgentCard(), ignore_unknown_fields=True)
    validate_proto_required_fields(proto)
    assert proto.name == "aistack research crew" and proto.skills[0].id == "research-crew"
    assert proto.capabilities.streaming
    AgentCardV03.model_validate(card)
    assert httpx.get(f"{server}/healthz").json()["workflow"] == "crew"
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"llm": "ok", "rag": "ok"}

    scripted_llm.expect(("research", NOTES), ("write", REPORT), ("review", APPROVE))
    proc = crew_cli("ask", "--url", server, "--query", TOPIC)
    scripted_llm.done()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["state"] == "completed" and out["answer"] == REPORT
    assert out["result"]["verdict"] == {"score": 88.0, "issues": [], "approved": True}
    assert {s["document_id"] for s in out["result"]["sources"]} == set(RAG_DOCS)
    metrics = httpx.get(f"{server}/metrics").text
    for name in (
        'agents_runs_total{outcome="ok",route="rag",workflow="crew"} 1.0',
        'agents_node_duration_seconds_count{node="review",workflow="crew"} 1.0',
        'agents_llm_tokens_total{kind="completion",node="research",workflow="crew"}',
        'agents_quality_pass_rate{workflow="crew"} 1.0',
    ):
        assert name in metrics, name


def test_a2a_without_llm_fails_the_task_and_says_how() -> None:
    proc, url = start_server(AGENT_WORKFLOW="crew")
    try:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503 and "LLM_URL" in ready.json()["checks"]["llm"]
        ask = crew_cli("ask", "--url", url, "--query", TOPIC)
        out = json.loads(ask.stdout)
        assert ask.returncode == 2 and out["state"] == "failed" and out["answer"] is None
        assert out["message"].startswith("The research crew could not run: no LLM is configured")
    finally:
        stop(proc)


def test_serve_rejects_an_unknown_or_missing_workflow() -> None:
    proc = crew_cli("serve", "--workflow", "swarm", "--port", str(free_port()))
    assert proc.returncode == 2 and "choose one of router, crew" in proc.stderr
    # This venv has CrewAI and no LangGraph: the router is refused, saying where it lives.
    proc = crew_cli("serve", "--workflow", "router", "--port", str(free_port()))
    assert proc.returncode == 2
    assert "the router workflow needs langgraph, which is not installed here" in proc.stderr


# -- plumbing against a real guidellm mock-server --------------------------------------------


def test_crew_cli_against_guidellm_mock_server(rag_url: str, guidellm_url: str) -> None:
    """A real OpenAI-compatible server that knows nothing of the roles: the crew runs through,
    the mock's text is no verdict, so the stricter retry and then the default apply."""
    proc = crew_cli(
        "crew",
        "--topic",
        TOPIC,
        "--verbose",
        LLM_URL=guidellm_url,
        LLM_MODEL="mock-llm",
        RAG_URL=rag_url,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout)  # stdout is the JSON result only
    assert out["report"] and out["retrieval_error"] is None
    assert [s["step"] for s in out["trace"]] == ["retrieve", "research", "write", "review"]
    assert out["trace"][1]["messages"] and out["trace"][2]["completion_tokens"] > 0
    assert out["parse_fallbacks"][0]["outcome"] == "default"
    assert out["verdict"] == DEFAULT_VERDICT.model_dump()
