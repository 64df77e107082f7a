"""Unit tests of the pure parts: chunking, hashing, BM25 encoding, fusion."""

from __future__ import annotations

import pytest

from rag_pipeline import __version__
from rag_pipeline.chunking import chunk_words
from rag_pipeline.documents import content_hash, point_id
from rag_pipeline.retrieval import fuse
from rag_pipeline.settings import Settings
from rag_pipeline.sparse import BM25Encoder, term_id, tokenize
from rag_pipeline.stores.base import Hit


def test_version() -> None:
    assert __version__.count(".") == 2


def test_chunk_words_windows_and_overlap() -> None:
    words = [f"w{i}" for i in range(25)]
    chunks = chunk_words(" ".join(words), size=10, overlap=3)
    assert chunks[0].split() == words[:10]
    assert chunks[1].split()[:3] == words[7:10]
    assert chunks[-1].split()[-1] == "w24"
    assert len(chunks) == 4  # starts 0, 7, 14, 21
    assert chunk_words("  \n\t ", 10, 2) == []
    assert chunk_words("one two", 10, 2) == ["one two"]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (5, 5), (5, -1)])
def test_chunk_words_rejects_bad_params(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_words("a b c", size, overlap)


def test_content_hash_and_point_ids_are_stable() -> None:
    assert content_hash("abc") == content_hash("abc") != content_hash("abd")
    assert len(content_hash("x")) == 64
    assert point_id("d", "h", 0) == point_id("d", "h", 0)
    assert len({point_id("d", "h", 0), point_id("d", "h", 1), point_id("d", "h2", 0)}) == 3


def test_bm25_encoder() -> None:
    enc = BM25Encoder(k1=1.2, b=0.75, avgdl=10)
    assert tokenize("The GPU and the Node!") == ["gpu", "node"]
    doc = enc.encode_document("gpu gpu node")
    weights = dict(zip(doc.indices, doc.values, strict=True))
    assert weights[term_id("gpu")] > weights[term_id("node")] > 0
    query = enc.encode_query("gpu GPU the")
    assert dict(zip(query.indices, query.values, strict=True)) == {term_id("gpu"): 2.0}
    assert enc.encode_query("the and of").indices == []


def _hits(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(i, s, {"text": i}) for i, s in pairs]


@pytest.mark.parametrize("method", ["zscore", "minmax", "rrf"])
def test_fuse_combines_both_lists(method: str) -> None:
    dense = _hits(("a", 0.9), ("b", 0.8), ("c", 0.1))
    sparse = _hits(("b", 12.0), ("d", 3.0), ("a", 1.0))
    fused = fuse(dense, sparse, method, dense_weight=0.5)
    assert {c.id for c in fused} == {"a", "b", "c", "d"}
    assert fused[0].id == "b"  # high in both lists
    assert fused[0].components == {"dense": 0.8, "sparse": 12.0}
    assert [c.score for c in fused] == sorted((c.score for c in fused), reverse=True)


def test_fuse_weight_extremes() -> None:
    dense = _hits(("a", 0.9), ("b", 0.5), ("c", 0.1))
    sparse = _hits(("c", 9.0), ("b", 5.0), ("a", 1.0))
    assert fuse(dense, sparse, "zscore", 1.0)[0].id == "a"
    assert fuse(dense, sparse, "zscore", 0.0)[0].id == "c"
    assert fuse([], sparse, "zscore", 0.65)[0].id == "c"


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNK_SIZE", "100")
    monkeypatch.setenv("EMBEDDING_STRATEGY", "dense")
    monkeypatch.setenv("LOCALAI_URL", "http://localai:8080/v1")
    s = Settings()
    assert (s.chunk_size, s.chunk_overlap, s.embedding_strategy) == (100, None, "dense")
    assert s.effective_llm_url == s.effective_embedding_url == "http://localai:8080/v1"
    assert Settings(llm_url="http://x/v1").effective_llm_url == "http://x/v1"
    with pytest.raises(ValueError):
        Settings(chunk_size=10, chunk_overlap=10)
    with pytest.raises(ValueError):
        Settings(vector_store="pgvector")
