"""The router's A2A server on loopback, called with the a2a-sdk client: agent card, message
send (A2A 1.0 and the 0.3 method name), streaming, health, readiness and metrics; and the
`aistack-agents ask` client command (what `make up` runs) against it."""

from __future__ import annotations

import asyncio
import json
import subprocess

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.compat.v0_3.types import AgentCard as AgentCardV03
from a2a.helpers import get_artifact_text, get_message_text, new_text_message
from a2a.types import AgentCard, Role, SendMessageRequest, StreamResponse, TaskState
from a2a.utils.proto_utils import validate_proto_required_fields
from google.protobuf.json_format import ParseDict

from tests.agents.conftest import AGENTS_VENV, ScriptedLLM, start_server, stop
from tests.conftest import free_port

RAG = '{"classification": "factual", "route": "rag"}'
GOOD = '{"score": 92, "reason": "grounded"}'


@pytest.fixture(scope="module")
def server(router_server: str) -> str:
    return router_server


async def ask(url: str, text: str, *, streaming: bool) -> list[StreamResponse]:
    client = await create_client(url, client_config=ClientConfig(streaming=streaming))
    try:
        request = SendMessageRequest(message=new_text_message(text, role=Role.ROLE_USER))
        return [event async for event in client.send_message(request)]
    finally:
        await client.close()


def test_agent_card_validates(server: str) -> None:
    card = httpx.get(f"{server}/.well-known/agent-card.json").json()
    proto = ParseDict(card, AgentCard(), ignore_unknown_fields=True)
    validate_proto_required_fields(proto)  # raises on a missing required field
    assert proto.capabilities.streaming and proto.skills[0].id == "query-router"
    assert proto.supported_interfaces[0].protocol_binding == "JSONRPC"
    AgentCardV03.model_validate(card)  # and as an A2A 0.3 card (older clients)


def test_message_send_returns_the_answer(server: str, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.expect(
        ("classify", RAG), ("generate", "Longhorn replicates volumes [1]."), ("quality", GOOD)
    )
    [event] = asyncio.run(ask(server, "Which component replicates volumes?", streaming=False))
    scripted_llm.done()
    task = event.task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    answer = get_artifact_text(task.artifacts[0])
    assert answer.startswith("Longhorn replicates volumes [1].")
    assert "[1] longhorn (chunk 0)" in answer
    data = task.artifacts[0].parts[1].data.struct_value
    assert data["route"] == "rag" and data["quality_passed"] is True


def test_streaming_reports_each_node(server: str, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.expect(
        ("classify", '{"classification": "creative", "route": "direct"}'),
        ("generate", "A haiku."),
        ("quality", GOOD),
    )
    events = asyncio.run(ask(server, "Write a haiku", streaming=True))
    scripted_llm.done()
    progress = [
        get_message_text(e.status_update.status.message)
        for e in events
        if e.HasField("status_update") and e.status_update.status.HasField("message")
    ]
    assert progress[0] == "classified as creative, route direct"
    assert "answer drafted (attempt 1)" in progress
    assert progress[-1] == "A haiku."
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


def test_jsonrpc_v03_message_send(server: str, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.expect(("classify", RAG), ("generate", "GPU time-slicing [1]."), ("quality", GOOD))
    body = {
        "jsonrpc": "2.0",
        "id": "1",
        "method": "message/send",
        "params": {
            "message": {
                "kind": "message",
                "messageId": "m-1",
                "role": "user",
                "parts": [{"kind": "text", "text": "How do pods share a GPU?"}],
            }
        },
    }
    result = httpx.post(server + "/", json=body, timeout=60).json()["result"]
    scripted_llm.done()
    assert result["kind"] == "task" and result["status"]["state"] == "completed"
    assert result["artifacts"][0]["parts"][0]["text"].startswith("GPU time-slicing [1].")


def ask_cli(url: str, query: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [str(AGENTS_VENV / "bin" / "aistack-agents"), "ask", "--url", url, "--query", query],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_ask_cli_prints_the_answer(server: str, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.expect(("classify", RAG), ("generate", "Longhorn [1]."), ("quality", GOOD))
    rc, out = ask_cli(server, "Which component replicates volumes?")
    scripted_llm.done()
    assert rc == 0, out
    assert out["state"] == "completed" and out["answer"].startswith("Longhorn [1].")
    assert out["result"]["route"] == "rag" and out["result"]["quality_passed"] is True


def test_ask_cli_unreachable_server() -> None:
    rc, out = ask_cli(f"http://127.0.0.1:{free_port()}", "anything")
    assert rc == 1 and "error" in out and out.get("answer") is None


def test_health_ready_metrics(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"llm": "ok", "rag": "ok"}
    metrics = httpx.get(f"{server}/metrics").text
    for name in (
        'agents_runs_total{outcome="ok",route="rag",workflow="router"}',
        'agents_node_duration_seconds_count{node="check_quality",workflow="router"}',
        'agents_llm_tokens_total{kind="completion",node="generate_response",workflow="router"}',
        'agents_quality_pass_rate{workflow="router"} 1.0',
    ):
        assert name in metrics, name


def test_without_llm_says_what_and_how() -> None:
    proc, url = start_server()
    try:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503 and "LLM_URL" in ready.json()["checks"]["llm"]
        [event] = asyncio.run(ask(url, "Which component replicates volumes?", streaming=False))
        status = event.task.status
        assert status.state == TaskState.TASK_STATE_FAILED
        text = get_message_text(status.message)
        assert text.startswith("The query router could not answer: no LLM is configured")
        assert "LLM_URL" in text and not event.task.artifacts
        # The client command says the same, with no answer, and exits 2.
        rc, out = ask_cli(url, "Which component replicates volumes?")
        assert rc == 2 and out["state"] == "failed" and out["answer"] is None
        assert "no LLM is configured" in out["message"] and "LLM_URL" in out["message"]
        metrics = httpx.get(f"{url}/metrics").text
        assert 'agents_runs_total{outcome="no_llm",route="none",workflow="router"} 2.0' in metrics
    finally:
        stop(proc)
