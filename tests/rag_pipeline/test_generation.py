"""Generation against guidellm mock-server over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import free_port

DOC = {"document_id": "gpu", "text": "GPU time-slicing lets several pods share one NVIDIA GPU."}


def test_generated_answer_with_sources(
    make_client: Callable[..., TestClient], llm_url: str
) -> None:
    client = make_client(llm_url=llm_url, llm_model="mock-llm")
    client.post("/ingest", json=DOC).raise_for_status()
    r = client.post("/query", json={"query": "How do pods share a GPU?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer_mode"] == "generated" and body["answer"]
    assert body["generation_error"] is None
    assert body["sources"][0]["document_id"] == "gpu"
    assert body["latency_ms"]["generate"] > 0


def test_llm_down_returns_retrieval_with_error(make_client: Callable[..., TestClient]) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    client = make_client(llm_url=closed, llm_timeout_s=5)
    client.post("/ingest", json=DOC).raise_for_status()
    r = client.post("/query", json={"query": "How do pods share a GPU?"})
    assert r.status_code == 200
    body = r.json()
    assert body["generation_error"] and "failed" in body["generation_error"]
    assert body["sources"][0]["document_id"] == "gpu"
    assert body["answer_mode"] == "extractive" and "[1]" in body["answer"]
    r = client.post("/query", json={"query": "How do pods share a GPU?", "stream": True})
    events = [e for e in r.text.split("\n\n") if e]
    assert events[-2].startswith("event: error") and events[-1].startswith("event: done")


def test_streaming_sse(make_client: Callable[..., TestClient], llm_url: str) -> None:
    client = make_client(llm_url=llm_url, llm_model="mock-llm")
    client.post("/ingest", json=DOC).raise_for_status()
    with client.stream("POST", "/query", json={"query": "share a GPU?", "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = "".join(r.iter_text())
    events = []
    for block in raw.strip().split("\n\n"):
        kind, data = block.split("\n", 1)
        events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    assert events[0][0] == "sources" and events[0][1][0]["document_id"] == "gpu"
    tokens = [d["text"] for k, d in events if k == "token"]
    assert len(tokens) > 1
    assert events[-1][0] == "done"
    assert events[-1][1]["answer"] == "".join(tokens)
    assert events[-1][1]["generation_error"] is None
