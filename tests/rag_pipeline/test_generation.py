"""Generation against guidellm mock-server, and a misbehaving LLM, over loopback HTTP."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
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


# --- deadlines and fallbacks (issue #13) -------------------------------------------------

DEADLINE_S = 2.0
# The trickling server gives up after this long; a query that is still waiting then has
# ignored the deadline (the old per-read timeout never fired: a byte came every second).
TRICKLE_FOR_S = 20.0
PARTIAL = "Partial answer that never"


def _chunk(text: str) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def _serve_misbehaving(conn: socket.socket) -> None:
    """One OpenAI-compatible request. The model name picks the misbehaviour: ``trickle``
    sends one byte a second and never finishes; ``break`` streams one piece and drops the
    connection mid-body."""
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body += conn.recv(65536)
        request = json.loads(body)
        stream = bool(request.get("stream"))
        kind = b"text/event-stream" if stream else b"application/json"
        # More than is ever sent: the client keeps reading until the deadline or the drop.
        conn.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: " + kind + b"\r\ncontent-length: 100000\r\n\r\n"
        )
        if stream:
            conn.sendall(_chunk(PARTIAL))
        if request["model"] == "break":
            return  # connection closed after a partial body
        filler = b":" if stream else b" "  # an unfinished SSE comment / JSON leading space
        end = time.monotonic() + TRICKLE_FOR_S
        with contextlib.suppress(OSError):  # the client hung up: what the deadline is for
            while time.monotonic() < end:
                conn.sendall(filler)
                time.sleep(1.0)


@pytest.fixture(scope="module")
def bad_llm_url() -> Iterator[str]:
    """A real HTTP server on loopback that misbehaves (see _serve_misbehaving)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_serve_misbehaving, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in raw.strip().split("\n\n"):
        kind, data = block.split("\n", 1)
        events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def test_deadline_ends_a_trickling_llm_with_the_extractive_answer(
    make_client: Callable[..., TestClient], bad_llm_url: str
) -> None:
    client = make_client(llm_url=bad_llm_url, llm_model="trickle", llm_timeout_s=DEADLINE_S)
    client.post("/ingest", json=DOC).raise_for_status()
    question = {"query": "How do pods share a GPU?"}

    t0 = time.monotonic()
    body = client.post("/query", json=question).json()
    took = time.monotonic() - t0
    assert DEADLINE_S <= took < TRICKLE_FOR_S / 2, took
    assert body["answer_mode"] == "extractive" and "[1]" in body["answer"]
    assert body["fallback_reason"] == "deadline" and "LLM_TIMEOUT_S" in body["generation_error"]

    t0 = time.monotonic()
    events = _sse_events(client.post("/query", json={**question, "stream": True}).text)
    took = time.monotonic() - t0
    assert DEADLINE_S <= took < TRICKLE_FOR_S / 2, took
    assert [k for k, _ in events] == ["sources", "token", "error", "done"]
    assert events[1][1]["text"] == PARTIAL  # what arrived before the stall was passed on
    done = events[-1][1]
    assert done["answer_mode"] == "extractive" and done["fallback_reason"] == "deadline"
    assert done["answer"] == body["answer"]  # the same fallback as the JSON path
    metrics = client.get("/metrics").text
    assert 'rag_generation_errors_total{reason="deadline"} 2.0' in metrics


def test_stream_broken_midway_ends_with_the_extractive_answer(
    make_client: Callable[..., TestClient], bad_llm_url: str
) -> None:
    client = make_client(llm_url=bad_llm_url, llm_model="break", llm_timeout_s=30)
    client.post("/ingest", json=DOC).raise_for_status()
    r = client.post("/query", json={"query": "How do pods share a GPU?", "stream": True})
    events = _sse_events(r.text)
    assert [k for k, _ in events] == ["sources", "token", "error", "done"]
    done = events[-1][1]
    assert done["answer_mode"] == "extractive" and done["fallback_reason"] == "llm_error"
    assert done["answer"] and done["answer"] != PARTIAL and "[1]" in done["answer"]
    assert done["generation_error"] == events[2][1]["generation_error"]


def test_a_streamed_query_is_timed_to_its_last_byte(
    make_client: Callable[..., TestClient], bad_llm_url: str
) -> None:
    """The answer's headers come at once, its last event after the LLM deadline: the request's
    duration (histogram and log) covers the whole stream."""
    client = make_client(llm_url=bad_llm_url, llm_model="trickle", llm_timeout_s=DEADLINE_S)
    client.post("/ingest", json=DOC).raise_for_status()
    with client.stream("POST", "/query", json={"query": "share a GPU?", "stream": True}) as r:
        assert r.status_code == 200
        body = r.read().decode()
    assert '"fallback_reason": "deadline"' in body
    metrics = client.get("/metrics").text
    match = re.search(r'rag_http_request_duration_seconds_sum\{route="/query"\} (\S+)', metrics)
    assert match is not None, metrics
    assert float(match.group(1)) >= DEADLINE_S


def test_a_stream_under_way_at_sigterm_ends_with_its_done_event(
    make_pipeline: Callable[..., Any], bad_llm_url: str
) -> None:
    """sse-starlette cuts the open streams when the server is told to exit (its SIGTERM hook
    sets AppStatus.should_exit); ours finish (the LLM deadline bounds them), so an answer
    being streamed during a rolling update still ends with its ``done`` event."""
    import httpx
    from sse_starlette.sse import AppStatus

    from rag_pipeline.main import create_app
    from tests.rag_pipeline.conftest import API_KEY, AUTH, serve

    pipeline = make_pipeline(
        api_key=API_KEY, llm_url=bad_llm_url, llm_model="trickle", llm_timeout_s=DEADLINE_S
    )
    with (
        serve(create_app(pipeline=pipeline)) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        client.post("/ingest", json=DOC).raise_for_status()
        body = {"query": "share a GPU?", "stream": True}
        try:
            with client.stream("POST", "/query", json=body) as r:
                assert r.headers["cache-control"] == "no-store"  # no proxy keeps a copy
                lines = r.iter_lines()
                assert next(lines) == "event: sources"
                AppStatus.should_exit = True  # what uvicorn's SIGTERM handler now does
                rest = list(lines)
        finally:
            AppStatus.should_exit = False
    assert "event: done" in rest, "\n".join(rest)
    assert '"fallback_reason": "deadline"' in rest[-2], rest
