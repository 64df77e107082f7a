"""HTTP API over embedded Qdrant and the bundled MiniLM."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from rag_pipeline.documents import content_hash, head_id
from rag_pipeline.models import DocumentIn, QueryRequest
from rag_pipeline.pipeline import Pipeline
from tests.conftest import free_port

DOCS = [
    {
        "document_id": "longhorn",
        "text": "Longhorn provides replicated block storage volumes for Kubernetes clusters.",
    },
    {
        "document_id": "gpu",
        "text": "GPU time-slicing lets several pods share one NVIDIA GPU on a node.",
    },
    {
        "document_id": "qdrant",
        "text": "Qdrant stores dense and sparse vectors and answers similarity search.",
    },
]


def test_health_is_open_and_ready(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    anon = TestClient(client.app)
    assert anon.get("/health").json()["status"] == "ok"
    ready = anon.get("/ready")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"store", "embedder"}


def test_ingest_query_roundtrip(client: TestClient) -> None:
    r = client.post("/ingest/batch", json={"documents": DOCS, "collection": "kb"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["chunks_created"], body["documents"]) == (3, 3, 3)
    r = client.post(
        "/query",
        json={
            "query": "Which component shares a GPU between pods?",
            "collection": "kb",
            "top_k": 3,
            "top_n": 2,
        },
    )
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["sources"][0]["document_id"] == "gpu"
    assert len(q["sources"]) == 2
    assert set(q["latency_ms"]) >= {"embed", "search", "rerank", "generate", "total"}
    assert q["answer_mode"] == "extractive" and "[1]" in q["answer"]
    for strategy in ("dense", "sparse"):
        r = client.post(
            "/query",
            json={
                "query": "GPU time-slicing",
                "collection": "kb",
                "strategy": strategy,
                "generate": False,
            },
        )
        assert r.json()["sources"][0]["document_id"] == "gpu"
        assert r.json()["answer"] == ""
    names = {c["name"]: c["chunks"] for c in client.get("/collections").json()["collections"]}
    assert names["kb"] == 3


def test_idempotent_reingest_and_replace(client: TestClient, embedder: object) -> None:
    text = " ".join(f"word{i}" for i in range(400))
    r = client.post("/ingest", json={"text": text, "metadata": {"v": 1}})
    first = r.json()
    # ~3 MiniLM tokens a word, ~1,200 tokens: more than the 254-token window, so passages of
    # at most 127 tokens that share about 63, each adding ~64: about 18 chunks
    chunks = first["chunks_created"]
    assert first["status"] == "created" and 15 <= chunks <= 22
    # the default id is the text's hash; the version hash covers the metadata too
    assert first["document_id"] == content_hash(text) != first["content_hash"]
    assert first["content_hash"] == content_hash(text, {"v": 1})
    assert set(first["latency_ms"]) >= {"chunk", "embed", "upsert", "total"}
    calls = []
    original = embedder.embed  # type: ignore[attr-defined]
    embedder.embed = lambda texts: calls.append(texts) or original(texts)  # type: ignore[attr-defined]
    try:
        again = client.post("/ingest", json={"text": text, "metadata": {"v": 1}}).json()
    finally:
        embedder.embed = original  # type: ignore[attr-defined]
    assert again["status"] == "unchanged" and again["chunks_created"] == 0
    assert calls == []  # unchanged content is not re-embedded
    # Same text, new metadata: a new version, whose chunks replace the old ones.
    relabelled = client.post("/ingest", json={"text": text, "metadata": {"v": 2}}).json()
    assert (relabelled["status"], relabelled["chunks_created"]) == ("updated", chunks)
    assert relabelled["document_id"] == first["document_id"]
    stored = {d["document_id"]: d for d in client.get("/documents").json()["documents"]}
    assert stored[first["document_id"]]["metadata"] == {"v": 2}
    assert stored[first["document_id"]]["chunks"] == chunks
    client.post("/ingest", json={"text": text, "metadata": {"v": 1}})
    # Same id, new content: every old chunk is replaced.
    r1 = client.post("/ingest", json={"text": text, "document_id": "doc"}).json()
    r2 = client.post("/ingest", json={"text": "short new version", "document_id": "doc"}).json()
    assert (r1["status"], r2["status"], r2["chunks_created"]) == ("created", "updated", 1)
    docs = {d["document_id"]: d for d in client.get("/documents").json()["documents"]}
    assert docs["doc"]["chunks"] == 1
    assert docs["doc"]["content_hash"] == r2["content_hash"]
    assert docs[first["document_id"]]["metadata"] == {"v": 1}
    d = client.delete("/documents/doc")
    assert d.json()["deleted_chunks"] == 1
    assert "doc" not in {x["document_id"] for x in client.get("/documents").json()["documents"]}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": ""}, 422),
        ({"text": "   \n "}, 422),
        ({"text": 42}, 422),
        ({"text": "ok", "metadata": "nope"}, 422),
        ({"text": "ok", "collection": "bad name!"}, 422),
        ({"text": "ok", "unknown": 1}, 422),
    ],
)
def test_ingest_bad_input(client: TestClient, body: dict[str, object], status: int) -> None:
    r = client.post("/ingest", json=body)
    assert r.status_code == status, r.text


def test_oversized_text_gets_413_with_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_document_chars=100, max_query_chars=50, max_request_bytes=5000)
    r = client.post("/ingest", json={"text": "x " * 60})
    assert r.status_code == 413 and "limit is 100" in r.json()["detail"]
    r = client.post("/ingest/batch", json={"documents": [{"text": "ok"}, {"text": "y " * 60}]})
    assert r.status_code == 413 and "documents[1]" in r.json()["detail"]
    r = client.post("/query", json={"query": "q" * 51})
    assert r.status_code == 413 and "limit is 50" in r.json()["detail"]
    r = client.post("/ingest", json={"text": "z" * 6000})
    assert r.status_code == 413 and "5000" in r.json()["detail"]


def test_query_bad_input_and_unknown_collection(client: TestClient) -> None:
    assert client.post("/query", json={"query": ""}).status_code == 422
    assert client.post("/query", json={"query": "x", "top_k": "ten"}).status_code == 422
    assert client.post("/query", json={"query": "x", "top_k": 0}).status_code == 422
    r = client.post("/query", json={"query": "x", "collection": "missing"})
    assert r.status_code == 404 and "missing" in r.json()["detail"]
    assert client.delete("/documents/x", params={"collection": "missing"}).status_code == 404
    assert client.get("/documents", params={"collection": "missing"}).status_code == 404


def test_api_key(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    anon = TestClient(client.app)
    assert anon.post("/query", json={"query": "x"}).status_code == 401
    wrong = anon.get("/collections", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    assert anon.get("/metrics").status_code == 401
    assert client.get("/collections").status_code == 200
    metrics = client.get("/metrics").text
    assert "rag_http_requests_total" in metrics


def test_store_down_gives_503(make_client: Callable[..., TestClient]) -> None:
    client = make_client(qdrant_url=f"http://127.0.0.1:{free_port()}")
    r = client.get("/ready")
    assert r.status_code == 503 and "unreachable" in r.json()["checks"]["store"]
    r = client.post("/ingest", json={"text": "hello"})
    assert r.status_code == 503 and "vector store unavailable" in r.json()["detail"]
    assert client.post("/query", json={"query": "hello"}).status_code == 503
    assert client.get("/collections").status_code == 503


class FailingClient:
    """Wraps a Qdrant client; the n-th upsert call raises."""

    def __init__(self, inner: object, fail_on_call: int) -> None:
        self.inner, self.fail_on_call, self.calls = inner, fail_on_call, 0

    def upsert(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("injected failure")
        return self.inner.upsert(*args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, item: str) -> object:
        return getattr(self.inner, item)


def test_failure_midway_keeps_previous_version(make_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = make_pipeline(chunk_size=20, chunk_overlap=5, upsert_batch_size=2)
    old_text = " ".join(f"old{i}" for i in range(60))
    pipeline.ingest_batch([DocumentIn(text=old_text, document_id="d")])
    before = pipeline.list_documents()
    store = pipeline.store
    store.client = FailingClient(store.client, fail_on_call=2)  # type: ignore[attr-defined]
    new_text = " ".join(f"new{i}" for i in range(60))
    with pytest.raises(RuntimeError, match="injected"):
        pipeline.ingest_batch([DocumentIn(text=new_text, document_id="d")])
    assert pipeline.list_documents() == before  # old version intact, partial new one rolled back
    hits = pipeline.query(QueryRequest(query="old3 old4", top_k=10, top_n=10, generate=False))
    assert {s.document_id for s in hits.sources} == {"d"}
    assert all("old" in s.text for s in hits.sources)
    # The retry goes through and replaces the document completely.
    store.client = store.client.inner  # type: ignore[attr-defined]
    result = pipeline.ingest_batch([DocumentIn(text=new_text, document_id="d")])
    assert result.results[0].status == "updated"
    (doc,) = pipeline.list_documents()
    assert doc.chunks == result.chunks_created > 1


def test_in_process_api(make_pipeline: Callable[..., Pipeline]) -> None:
    with make_pipeline(embedding_strategy="hybrid") as pipeline:
        assert pipeline.ensure_collection("inproc") is True
        assert pipeline.ensure_collection("inproc") is False
        res = pipeline.ingest_batch(
            [DocumentIn(text=d["text"], document_id=d["document_id"]) for d in DOCS], "inproc"
        )
        assert res.created == 3
        assert [d.document_id for d in pipeline.list_documents("inproc")] == [
            "gpu",
            "longhorn",
            "qdrant",
        ]
        assert pipeline.delete_document("gpu", "inproc") == 1
        assert pipeline.delete_document("gpu", "inproc") == 0


def test_path_like_document_ids(client: TestClient) -> None:
    r = client.post("/ingest", json={"text": "intro guide", "document_id": "guides/intro.md"})
    assert r.json()["document_id"] == "guides/intro.md"
    d = client.delete("/documents/guides/intro.md")
    assert d.status_code == 200 and d.json()["deleted_chunks"] == 1


def test_collection_of_another_embedder_gets_409(make_client: Callable[..., TestClient]) -> None:
    from qdrant_client import models

    client = make_client()
    store = client.app.state.pipeline.store
    store.client.create_collection(
        "small",
        vectors_config={"dense": models.VectorParams(size=8, distance=models.Distance.COSINE)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    r = client.post("/ingest", json={"text": "some text", "collection": "small"})
    assert r.status_code == 409
    assert (
        "stores 'dense' vectors of size 8, but the embedding model produces 384"
        in (r.json()["detail"])
    )
    assert store.client.count("small").count == 0


def test_documents_report_text_hash(client: TestClient) -> None:
    import hashlib

    text = "Qdrant keeps the text hash of every chunk."
    client.post("/ingest", json={"text": text, "document_id": "th", "metadata": {"k": "v"}})
    (doc,) = client.get("/documents").json()["documents"]
    assert doc["text_hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert doc["content_hash"] == content_hash(text, {"k": "v"}) != doc["text_hash"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["DocumentSummary"]
    assert "rag_pipeline 0.3.0" in schema["properties"]["text_hash"]["description"]


def test_document_without_text_hash_is_rewritten_once(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    """Chunks written before 0.3.0 have no text_hash: the next ingest completes them."""
    pipeline = make_pipeline(chunk_size=20, chunk_overlap=5)
    doc = DocumentIn(text=" ".join(f"w{i}" for i in range(50)), document_id="old", metadata={})
    first = pipeline.ingest_batch([doc], "legacy").results[0]
    client = pipeline.store.client  # type: ignore[attr-defined]
    # What rag_pipeline < 0.3.0 stored: chunks without text_hash (nor version_id), no head.
    client.delete("legacy", points_selector=[head_id("old")])
    client_ids = sorted(str(p.id) for p in client.scroll("legacy")[0])
    client.delete_payload("legacy", keys=["text_hash", "version_id"], points=client_ids)
    (listed,) = pipeline.list_documents("legacy")
    assert listed.text_hash is None and listed.content_hash == first.content_hash
    again = pipeline.ingest_batch([doc], "legacy").results[0]
    assert (again.status, again.chunks_created) == ("updated", first.chunks_created)
    assert again.content_hash == first.content_hash
    (listed,) = pipeline.list_documents("legacy")
    assert listed.text_hash is not None and listed.chunks == first.chunks_created
    # Rewritten into the versioned scheme: new chunks plus the document's head point.
    points = client.scroll("legacy")[0]
    assert len(points) == first.chunks_created + 1
    assert not {str(p.id) for p in points} & set(client_ids)
    assert pipeline.ingest_batch([doc], "legacy").results[0].status == "unchanged"
