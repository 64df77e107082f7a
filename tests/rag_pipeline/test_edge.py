"""Input hygiene at the edge (issue #13): hostile strings, numbers and shapes get 422 or 413
naming the field, on both stores, and leave the collection healthy; the body limit counts the
bytes of chunked bodies over real HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from rag_pipeline.embeddings import LocalEmbedder
from rag_pipeline.logging_setup import JsonFormatter
from rag_pipeline.main import ECHO_CHARS, create_app
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings
from rag_pipeline.stores import make_store
from tests.rag_pipeline.conftest import serve

# In every hostile document text: it must never reach a log line.
MARK = "Confidential7f3a"
HEALTHY = {
    "document_id": "healthy",
    "text": "GPU time-slicing lets several pods share one NVIDIA GPU.",
    "metadata": {"tags": ["gpu", "sharing"], "source": {"path": "docs/gpu.md"}},
}


def _nested(levels: int) -> dict[str, object]:
    """A metadata object ``levels`` levels deep (the object itself is level 1)."""
    value: dict[str, object] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _ingest(metadata: object) -> str:
    return json.dumps({"text": f"{MARK} ok", "metadata": metadata})


BIG = {"notes": "x" * 20_000}  # over MAX_METADATA_BYTES=16384 by default
MANY_KEYS = {"a": {f"k{i}": i for i in range(200)}, "b": {f"k{i}": i for i in range(100)}}

# (id, method, path, raw JSON body, status, what the answer must name). The bodies are raw
# JSON text so that "\ud800", "\u0000", NaN and Infinity reach the server's JSON parser as such.
# fmt: off
CASES: list[tuple[str, str, str, str | None, int, str]] = [
    ("text-surrogate", "POST", "/ingest", rf'{{"text": "{MARK} a \ud800 b"}}', 422,
     "body.text: String contains a lone surrogate U+D800"),
    ("text-nul", "POST", "/ingest", rf'{{"text": "{MARK} a\u0000b"}}', 422,
     "body.text: String contains a NUL character"),
    ("id-surrogate", "POST", "/ingest", rf'{{"text": "{MARK}", "document_id": "x\udc00"}}', 422,
     "body.document_id: String contains a lone surrogate U+DC00"),
    ("id-nul", "POST", "/ingest", rf'{{"text": "{MARK}", "document_id": "x\u0000"}}', 422,
     "body.document_id: String contains a NUL character"),
    ("collection-surrogate", "POST", "/ingest", rf'{{"text": "{MARK}", "collection": "\udfff"}}',
     422, "body.collection: String contains a lone surrogate U+DFFF"),
    ("metadata-key-surrogate", "POST", "/ingest", _ingest({"\ud800": 1}), 422,
     'body.metadata: metadata["\\ud800"]: the key contains a lone surrogate'),
    ("metadata-value-surrogate", "POST", "/ingest", _ingest({"tags": ["a", "\ud83d"]}), 422,
     'body.metadata: metadata["tags"][1]: the string contains a lone surrogate U+D83D'),
    ("metadata-key-nul", "POST", "/ingest", _ingest({"a\x00": 1}), 422,
     'body.metadata: metadata["a\\u0000"]: the key contains a NUL character'),
    ("metadata-value-nul", "POST", "/ingest", _ingest({"k": {"v": "a\x00"}}), 422,
     'body.metadata: metadata["k"]["v"]: the string contains a NUL character'),
    ("metadata-nan", "POST", "/ingest", _ingest({"k": float("nan")}), 422,
     'body.metadata: metadata["k"]: nan is not a JSON number'),
    ("metadata-infinity", "POST", "/ingest", _ingest({"k": {"x": float("inf")}}), 422,
     'body.metadata: metadata["k"]["x"]: inf is not a JSON number'),
    ("metadata-minus-infinity", "POST", "/ingest", _ingest({"k": [1, float("-inf")]}), 422,
     'body.metadata: metadata["k"][1]: -inf is not a JSON number'),
    ("metadata-deep", "POST", "/ingest", _ingest(_nested(17)), 422,
     "metadata is nested 17 levels deep; the limit is 16 (MAX_METADATA_DEPTH)"),
    ("metadata-256-deep", "POST", "/ingest", _ingest(_nested(300)), 422,
     "body.metadata: metadata is nested more than 64 levels deep"),
    ("metadata-big", "POST", "/ingest", _ingest(BIG), 413,
     "metadata has 20012 bytes as JSON; the limit is 16384 (MAX_METADATA_BYTES)"),
    ("metadata-keys", "POST", "/ingest", _ingest(MANY_KEYS), 413,
     "metadata has 302 keys; the limit is 256 (MAX_METADATA_KEYS)"),
    ("batch-text-surrogate", "POST", "/ingest/batch",
     rf'{{"documents": [{{"text": "{MARK}"}}, {{"text": "{MARK} \ud800"}}]}}', 422,
     "body.documents.1.text: String contains a lone surrogate"),
    ("batch-metadata-nan", "POST", "/ingest/batch",
     rf'{{"documents": [{{"text": "{MARK}", "metadata": {{"k": NaN}}}}]}}', 422,
     'body.documents.0.metadata: metadata["k"]: nan'),
    ("batch-metadata-big", "POST", "/ingest/batch",
     json.dumps({"documents": [{"text": MARK}, {"text": MARK, "metadata": BIG}]}), 413,
     "documents[1].metadata has 20012 bytes"),
    ("query-surrogate", "POST", "/query", r'{"query": "gpu \ud800"}', 422,
     "body.query: String contains a lone surrogate U+D800"),
    ("query-nul", "POST", "/query", r'{"query": "gpu\u0000"}', 422,
     "body.query: String contains a NUL character"),
    ("query-collection-nul", "POST", "/query", r'{"query": "gpu", "collection": "a\u0000"}', 422,
     "body.collection: String contains a NUL character"),
    ("query-strategy-surrogate", "POST", "/query", r'{"query": "gpu", "strategy": "\ud800"}', 422,
     "body.strategy: "),
    ("delete-nul", "DELETE", "/documents/a%00b", None, 422,
     "path.document_id: String contains a NUL character"),
    ("delete-collection-nul", "DELETE", "/documents/x?collection=a%00b", None, 422,
     "query.collection: String should match pattern"),
    ("create-collection-nul", "PUT", "/collections/a%00b", None, 422,
     "path.name: String should match pattern"),
]
# fmt: on


def _named(detail: object) -> str:
    """The error answer as one string: 'loc: msg' per validation error, or the detail."""
    if isinstance(detail, list):
        return "\n".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in detail)
    return str(detail)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module", params=["qdrant", "pgvector"])
def edge(
    request: pytest.FixtureRequest, embedder: LocalEmbedder
) -> Iterator[tuple[TestClient, list[str]]]:
    """A client of one store holding one healthy document; the service's log lines are kept."""
    store: dict[str, object] = {}
    if request.param == "pgvector":
        store = {"vector_store": "pgvector", "pgvector_dsn": request.getfixturevalue("pg_dsn")}
    s = Settings(collection_name=f"edge_{request.param}", **store)  # type: ignore[arg-type]
    lines = _Lines()
    logger = logging.getLogger("rag_pipeline")
    pipeline = Pipeline(s, make_store(s), embedder=embedder)
    with pipeline, TestClient(create_app(pipeline=pipeline), raise_server_exceptions=False) as c:
        logger.addHandler(lines)
        try:
            assert c.post("/ingest", json=HEALTHY).status_code == 200
            yield c, lines.lines
        finally:
            logger.removeHandler(lines)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "named"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_hostile_input_is_refused_and_store_stays_healthy(
    edge: tuple[TestClient, list[str]],
    method: str,
    path: str,
    body: str | None,
    status: int,
    named: str,
) -> None:
    client, log_lines = edge
    logged = len(log_lines)
    headers = {"content-type": "application/json"}
    r = client.request(method, path, content=body.encode() if body else None, headers=headers)
    assert r.status_code == status, r.text
    assert named in _named(r.json()["detail"]), r.text
    # The collection is intact and answers: listing and a query that returns the chunk.
    docs = client.get("/documents").json()["documents"]
    assert [(d["document_id"], d["metadata"]) for d in docs] == [("healthy", HEALTHY["metadata"])]
    q = client.post("/query", json={"query": "pods share a GPU", "generate": False})
    assert q.status_code == 200, q.text
    assert q.json()["sources"][0]["metadata"] == HEALTHY["metadata"]
    assert not any(MARK in line for line in log_lines[logged:])


def test_validation_errors_echo_little(make_client: Callable[..., TestClient]) -> None:
    """A rejected document is not echoed whole; what is echoed is valid UTF-8 JSON."""
    client = make_client()
    text = "\ud800" + "x" * 10_000
    r = client.post(
        "/ingest",
        content=json.dumps({"text": text}).encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    r.content.decode("utf-8")  # strict: no surrogate made it into the answer
    (error,) = r.json()["detail"]
    # ECHO_CHARS characters, the escaped surrogate counting 6, and an ellipsis
    assert error["input"] == "\\ud800" + "x" * (ECHO_CHARS - 1) + "…"
    schema = client.get("/openapi.json").json()["components"]["schemas"]["DocumentIn"]
    metadata = schema["properties"]["metadata"]["description"]
    assert "MAX_METADATA_BYTES (default 16384)" in metadata
    assert "MAX_METADATA_DEPTH (default 16" in metadata


def test_lying_content_length_is_counted(make_client: Callable[..., TestClient]) -> None:
    """The declared length says 10 bytes, 6,000 arrive: the count decides."""
    client = make_client(max_request_bytes=5_000)
    body = json.dumps({"text": "z " * 3_000}).encode()
    r = client.post(
        "/ingest",
        content=body,
        headers={"content-type": "application/json", "content-length": "10"},
    )
    assert r.status_code == 413, r.text
    assert "the limit is 5000 (MAX_REQUEST_BYTES)" in r.json()["detail"]


@pytest.fixture
def server_url(make_pipeline: Callable[..., Pipeline]) -> Iterator[str]:
    """The service over real loopback HTTP (uvicorn), 1 MB body limit."""
    with serve(
        create_app(pipeline=make_pipeline(max_request_bytes=1_000_000, log_level="WARNING"))
    ) as url:
        yield url


def test_chunked_body_over_the_limit_gets_413(server_url: str) -> None:
    total = 30_000_000
    sent = 0

    def body(size: int) -> Iterator[bytes]:
        """A valid ingest request of ``size`` bytes, in 64 KiB chunks (no Content-Length)."""
        nonlocal sent
        head, tail = b'{"document_id": "big", "text": "', b'"}'
        filler = b"word " * 13_107
        yield head
        sent = len(head)
        while sent + len(filler) + len(tail) <= size:
            yield filler
            sent += len(filler)
        yield tail
        sent += len(tail)

    with httpx.Client(base_url=server_url, timeout=60) as client:
        json_type = {"content-type": "application/json"}
        r = client.post("/ingest", content=body(total), headers=json_type)
        assert r.status_code == 413, r.text[:300]
        assert "the limit is 1000000 (MAX_REQUEST_BYTES)" in r.json()["detail"]
        # Answered as the limit passed: the server closed the connection and the client
        # stopped sending long before the 30 MB.
        assert sent < total // 3, sent
        # A chunked body under the limit goes through, and the big document was not stored.
        small = client.post(
            "/ingest",
            content=iter([b'{"document_id": "small", ', b'"text": "chunked but small"}']),
            headers=json_type,
        )
        assert small.status_code == 200, small.text
        ids = {d["document_id"] for d in client.get("/documents").json()["documents"]}
        assert ids == {"small"}
