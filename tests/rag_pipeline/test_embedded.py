"""rag_pipeline.embedded: the stable in-process API, against embedded Qdrant in tmp_path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from rag_pipeline.embedded import (
    ChunkingConfigError,
    CollectionNotFoundError,
    EmbeddedPipeline,
    InvalidInputError,
    LayoutMismatchError,
    ReindexConflictError,
    SettingsError,
    StoreUnavailableError,
)
from rag_pipeline.embeddings import LocalEmbedder
from tests.rag_pipeline.test_reindex import NEW, OLD, drop_originals, seed_docs

DOCS: list[dict[str, Any]] = [
    {"document_id": "a.md", "text": "Longhorn replicates block volumes.", "metadata": {"t": 1}},
    {"document_id": "b.md", "text": "GPU time-slicing shares one GPU between pods."},
]


@pytest.fixture
def rag(tmp_path: Path, embedder: LocalEmbedder) -> Any:  # embedder: the model, loaded once
    with EmbeddedPipeline(qdrant_path=str(tmp_path / "qdrant"), embedding_backend="local") as p:
        yield p


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_ingest_list_delete(rag: EmbeddedPipeline) -> None:
    assert rag.list_documents("kb") is None
    assert rag.check_collection("kb") is False
    results = rag.ingest(DOCS, "kb")
    assert [(r["document_id"], r["status"], r["chunks_created"]) for r in results] == [
        ("a.md", "created", 1),
        ("b.md", "created", 1),
    ]
    assert set(results[0]) >= {"collection_name", "content_hash", "latency_ms"}
    json.dumps(results)  # plain values
    assert rag.check_collection("kb") is True
    listed = rag.list_documents("kb")
    assert listed is not None and sorted(listed) == ["a.md", "b.md"]
    assert listed["a.md"]["text_hash"] == sha256(DOCS[0]["text"])
    assert listed["a.md"]["metadata"] == {"t": 1}
    assert listed["a.md"]["content_hash"] == results[0]["content_hash"]
    assert [r["status"] for r in rag.ingest(DOCS, "kb")] == ["unchanged", "unchanged"]
    assert rag.delete("a.md", "kb") == 1
    assert rag.delete("a.md", "kb") == 0
    assert sorted(rag.list_documents("kb") or {}) == ["b.md"]
    with pytest.raises(CollectionNotFoundError):
        rag.delete("b.md", "missing")


def test_layout_and_mismatch(rag: EmbeddedPipeline) -> None:
    layout = rag.layout()
    assert layout["dimension"] == 384 and layout["embedding_backend"] == "local"
    assert layout["vectors"] == {"dense": {"size": 384, "distance": "Cosine"}}
    assert "payload_indexes" not in layout  # embedded Qdrant
    # A collection made for another embedder.
    from qdrant_client import models

    rag._pipeline.store.client.create_collection(  # type: ignore[attr-defined]
        "small",
        vectors_config={"dense": models.VectorParams(size=8, distance=models.Distance.COSINE)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    with pytest.raises(LayoutMismatchError) as info:
        rag.check_collection("small")
    message = str(info.value)
    assert "collection 'small' stores 'dense' vectors of size 8" in message
    assert "the embedding model produces 384-dimensional dense vectors" in message
    wanted = {key: layout[key] for key in ("vectors", "sparse_vectors")}
    assert f"create it with the layout {json.dumps(wanted)}" in message
    assert info.value.layout == wanted
    with pytest.raises(LayoutMismatchError):
        rag.ingest(DOCS, "small")


def test_bad_settings_and_input(tmp_path: Path, rag: EmbeddedPipeline) -> None:
    with pytest.raises(SettingsError, match=r"unknown setting\(s\) qdrant_host, url; the settings"):
        EmbeddedPipeline(url="http://q", qdrant_host="q")
    with pytest.raises(SettingsError, match="chunk_size"):
        EmbeddedPipeline(chunk_size=-1)
    with pytest.raises(SettingsError, match="CHUNK_OVERLAP must be smaller"):
        EmbeddedPipeline(chunk_size=10, chunk_overlap=10)
    with pytest.raises(InvalidInputError, match="invalid document"):
        rag.ingest([{"text": "x", "unknown": 1}], "kb")
    with pytest.raises(InvalidInputError, match="text has no words"):
        rag.ingest([{"text": " \n\t "}], "kb")
    with pytest.raises(InvalidInputError, match="invalid collection name 'no spaces'"):
        rag.list_documents("no spaces")
    with pytest.raises(InvalidInputError, match="duplicate document_id"):
        rag.ingest([DOCS[0], DOCS[0]], "kb")


def test_size_limits_apply_in_process(tmp_path: Path, embedder: LocalEmbedder) -> None:
    """The operator's per-document limits hold in process as over HTTP; nothing is stored."""
    limits = {"max_document_chars": 50, "max_metadata_bytes": 64, "max_metadata_keys": 3}
    with EmbeddedPipeline(qdrant_path=str(tmp_path / "q"), **limits) as rag:
        too_long = {"document_id": "x", "text": "word " * 20}
        with pytest.raises(
            InvalidInputError, match=r"documents\[1\]\.text has 100 .*MAX_DOCUMENT_CHARS"
        ):
            rag.ingest([DOCS[1], too_long], "kb")
        big = {**DOCS[1], "metadata": {"k": "v" * 100}}
        with pytest.raises(
            InvalidInputError, match=r"documents\[0\]\.metadata .*MAX_METADATA_BYTES"
        ):
            rag.ingest([big], "kb")
        many = {**DOCS[1], "metadata": {"a": {"b": 1, "c": 2, "d": 3}}}
        with pytest.raises(
            InvalidInputError, match=r"has 4 keys; the limit is 3 \(MAX_METADATA_KEYS"
        ):
            rag.ingest([many], "kb")
        deep: dict[str, Any] = {"leaf": 1}
        for _ in range(20):
            deep = {"n": deep}
        with pytest.raises(InvalidInputError, match="MAX_METADATA_DEPTH"):
            rag.ingest([{**DOCS[1], "metadata": deep}], "kb")
        assert rag.list_documents("kb") is None  # nothing was written, not even the collection
        assert [r["status"] for r in rag.ingest([DOCS[1]], "kb")] == ["created"]


def test_environment_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: LocalEmbedder
) -> None:
    monkeypatch.setenv("VECTOR_STORE", "pgvector")
    monkeypatch.setenv("CHUNK_SIZE", "3")
    with EmbeddedPipeline(qdrant_path=str(tmp_path / "q")) as rag:
        assert (rag.settings.vector_store, rag.settings.chunk_size) == ("qdrant", 0)


def test_locked_storage_is_store_unavailable(tmp_path: Path, rag: EmbeddedPipeline) -> None:
    with pytest.raises(StoreUnavailableError, match="already accessed by another instance"):
        EmbeddedPipeline(qdrant_path=str(tmp_path / "qdrant"))


def test_reindex_rebuilds_from_the_originals(tmp_path: Path, embedder: LocalEmbedder) -> None:
    """reindex(): as POST /collections/{name}/reindex, waited for; the originals re-cut with
    the new chunker into a new physical collection that replaces the old one."""
    path = str(tmp_path / "qdrant")
    docs = [d.model_dump() for d in seed_docs()[1:4]]  # 2, 3 and 1 sentences (embedding is slow)
    with EmbeddedPipeline(qdrant_path=path, **OLD) as old:
        old.ingest(docs, "kb")
        listed = old.list_documents("kb") or {}
    with EmbeddedPipeline(qdrant_path=path, **NEW) as rag:
        with pytest.raises(ChunkingConfigError, match="re-index it"):
            rag.ingest([DOCS[1]], "kb")  # the new chunker is refused until re-indexed
        client: Any = rag._pipeline.store.client  # type: ignore[attr-defined]
        before = {c.name for c in client.get_collections().collections}
        job = rag.reindex("kb")
        json.dumps(job)  # plain values
        assert job["state"] == "succeeded" and job["error"] is None, job
        assert job["documents_done"] == job["documents_total"] == len(docs)
        assert job["chunker"]["size"] == NEW["chunk_size"]
        after = {c.name for c in client.get_collections().collections}
        assert len(after) == len(before) and after != before  # the old build is dropped
        relisted = rag.list_documents("kb") or {}
        assert {d: v["content_hash"] for d, v in relisted.items()} == {
            d: v["content_hash"] for d, v in listed.items()
        }
        # Two sentences per chunk now, one before.
        assert [relisted[d]["chunks"] for d in sorted(relisted)] == [
            (listed[d]["chunks"] + 1) // 2 for d in sorted(listed)
        ]
        assert [r["status"] for r in rag.ingest([DOCS[1]], "kb")] == ["created"]
        with pytest.raises(CollectionNotFoundError):
            rag.reindex("missing")
        with pytest.raises(InvalidInputError, match="invalid collection name"):
            rag.reindex("no spaces")
        drop_originals(rag._pipeline, "kb", ["d02"])
        with pytest.raises(ReindexConflictError, match=r"1 document\(s\) \('d02'\)"):
            rag.reindex("kb")
        assert rag.list_documents("kb") == {**relisted, "b.md": ANY}  # nothing changed
