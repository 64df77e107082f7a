"""The pgvector store against a real PostgreSQL 16 + pgvector (pgserver)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rag_pipeline.models import DocumentIn, QueryRequest
from rag_pipeline.pipeline import Pipeline

DOCS = [
    DocumentIn(
        document_id="longhorn",
        text="Longhorn provides replicated block storage for Kubernetes.",
        metadata={"t": "storage"},
    ),
    DocumentIn(document_id="gpu", text="GPU time-slicing lets several pods share one NVIDIA GPU."),
    DocumentIn(
        document_id="qdrant", text="Qdrant stores dense and sparse vectors for similarity search."
    ),
]


def test_pgvector_pipeline(make_pipeline: Callable[..., Pipeline], pg_dsn: str) -> None:
    pipeline = make_pipeline(vector_store="pgvector", pgvector_dsn=pg_dsn)
    pipeline.ready()
    assert pipeline.ensure_collection("pgkb") is True
    res = pipeline.ingest_batch(DOCS, "pgkb")
    assert res.created == 3
    assert pipeline.ingest_batch(DOCS, "pgkb").unchanged == 3
    for strategy in ("dense", "sparse", "hybrid"):
        out = pipeline.query(
            QueryRequest(
                query="block storage volumes", collection="pgkb", strategy=strategy, generate=False
            )
        )
        assert out.sources[0].document_id == "longhorn", strategy
        assert out.sources[0].metadata == {"t": "storage"}
    changed = DocumentIn(document_id="gpu", text=" ".join(["gpu sharing"] * 600))
    r = pipeline.ingest_batch([changed], "pgkb").results[0]
    assert r.status == "updated" and r.chunks_created > 1
    docs = {d.document_id: d for d in pipeline.list_documents("pgkb")}
    assert docs["gpu"].chunks == r.chunks_created
    assert pipeline.delete_document("gpu", "pgkb") == r.chunks_created
    assert dict(pipeline.list_collections())["pgkb"] == 2


def test_pgvector_text_hash(make_pipeline: Callable[..., Pipeline], pg_dsn: str) -> None:
    """text_hash is listed, and chunks stored before 0.3.0 (no text_hash) are re-written once."""
    import hashlib

    from psycopg import connect

    pipeline = make_pipeline(vector_store="pgvector", pgvector_dsn=pg_dsn)
    pipeline.ingest_batch(DOCS, "pghash")
    docs = {d.document_id: d for d in pipeline.list_documents("pghash")}
    assert docs["longhorn"].text_hash == hashlib.sha256(DOCS[0].text.encode()).hexdigest()
    with connect(pg_dsn) as conn:  # what an older version stored
        conn.execute("UPDATE rag_chunks_pghash SET payload = payload - 'text_hash'")
    docs = {d.document_id: d for d in pipeline.list_documents("pghash")}
    assert {d.text_hash for d in docs.values()} == {None}
    again = pipeline.ingest_batch(DOCS, "pghash")
    assert (again.updated, again.unchanged) == (3, 0)
    docs = {d.document_id: d for d in pipeline.list_documents("pghash")}
    assert docs["gpu"].text_hash == hashlib.sha256(DOCS[1].text.encode()).hexdigest()
    assert sum(d.chunks for d in docs.values()) == 3
    assert pipeline.ingest_batch(DOCS, "pghash").unchanged == 3


def test_pgvector_bm25_matches_qdrant(make_pipeline: Callable[..., Pipeline], pg_dsn: str) -> None:
    """IDF in SQL must rank like Qdrant's idf modifier."""
    texts = [f"alpha beta {'gamma ' * i} delta{i}" for i in range(1, 8)]
    docs = [DocumentIn(text=t, document_id=str(i)) for i, t in enumerate(texts)]
    pg = make_pipeline(vector_store="pgvector", pgvector_dsn=pg_dsn)
    qd = make_pipeline()
    pg.ingest_batch(docs, "bm25cmp")
    qd.ingest_batch(docs, "bm25cmp")
    req = QueryRequest(
        query="gamma delta3",
        collection="bm25cmp",
        strategy="sparse",
        top_k=7,
        top_n=7,
        generate=False,
    )
    a = [(s.document_id, round(s.score, 3)) for s in pg.query(req).sources]
    b = [(s.document_id, round(s.score, 3)) for s in qd.query(req).sources]
    assert a == b


def test_pgvector_down(make_pipeline: Callable[..., Pipeline]) -> None:
    import pytest

    from rag_pipeline.stores import StoreUnavailableError

    pipeline = make_pipeline(vector_store="pgvector", pgvector_dsn="postgresql://u@127.0.0.1:1/db")
    with pytest.raises(StoreUnavailableError):
        pipeline.store.ping()


def test_pgvector_collection_of_another_embedder_is_refused(
    make_pipeline: Callable[..., Pipeline], pg_dsn: str
) -> None:
    from rag_pipeline.stores import CollectionMismatchError

    pipeline = make_pipeline(vector_store="pgvector", pgvector_dsn=pg_dsn)
    pipeline.store.ensure_collection("pg_small", 8)
    with pytest.raises(CollectionMismatchError, match="stores vectors of size 8"):
        pipeline.ingest_batch([DocumentIn(text="some text")], "pg_small")
    assert pipeline.list_documents("pg_small") == []
