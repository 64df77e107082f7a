"""Every script (issue #14, item 3): BM25 terms from NFKC + case folding, words of every script,
CJK runs as character bigrams; the tokenizer is part of the collection layout, and a
collection indexed with another tokenizer is refused for writes and sparse queries (409)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from psycopg import connect, sql
from qdrant_client import models

from rag_pipeline.layout import SPARSE, SPARSE_TOKENIZERS
from rag_pipeline.sparse import LEGACY_TOKENIZER, TOKENIZER, tokenize, words

DOCS = {
    "de": "Die Straßenbahn fährt über die Brücke; größere Fahrzeuge brauchen eine Genehmigung.",
    "fr": "L'élève étudie la météorologie à l'école, près de la forêt enneigée.",
    "ja": "東京タワーは日本の電波塔で、展望台から富士山が見えます。",
    "zh": "机器学习是人工智能的一个分支，它让计算机从数据中学习规律。",  # noqa: RUF001
    "en": "The GPU node runs the inference server for the language models.",
}
# Each query shares terms with its own document only, and only once the tokenizer handles its
# script: upper case and ss for ß and Ö (case folding), decomposed accents (NFKC), and
# Japanese and Chinese without spaces (bigrams). The ASCII tokenizer finds none of them.
QUERIES = {
    "de": "STRASSENBAHN GRÖSSERE",
    "fr": unicodedata.normalize("NFD", "météorologie forêt"),
    "ja": "電波塔はどこ",
    "zh": "人工智能",
    "en": "inference GPU",
}


def test_tokenizer_folds_case_and_width_and_keeps_every_script() -> None:
    assert tokenize("The GPU and the Node!") == ["gpu", "node"]
    assert tokenize("Straße GRÖSSE") == tokenize("STRASSE größe") == ["strasse", "grösse"]
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in "full width 5G")
    assert tokenize(fullwidth) == ["full", "width", "5g"]  # NFKC
    decomposed = unicodedata.normalize("NFD", "élève")
    assert tokenize(decomposed) == tokenize("élève") == ["élève"]
    assert tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]  # combining marks stay in the word
    assert tokenize("snake_case") == ["snake", "case"]
    assert words("人工智能") == ["人工", "工智", "智能"]
    assert words("東京タワー") == ["東京", "京タ", "タワ", "ワー"]
    assert words("한국어 분석") == ["한국", "국어", "분석"]
    assert words("猫 cat") == ["猫", "cat"]  # a lone CJK character is a unigram


def test_layout_names_the_tokenizer() -> None:
    assert f"bm25-{TOKENIZER}" == SPARSE
    assert SPARSE_TOKENIZERS == {SPARSE: TOKENIZER, "bm25": LEGACY_TOKENIZER}


@pytest.fixture(params=["qdrant", "pgvector"])
def store_settings(request: pytest.FixtureRequest) -> dict[str, object]:
    if request.param == "pgvector":
        return {"vector_store": "pgvector", "pgvector_dsn": request.getfixturevalue("pg_dsn")}
    return {}


def test_a_query_in_each_language_finds_its_document_by_bm25(
    make_client: Callable[..., TestClient], store_settings: dict[str, object]
) -> None:
    client = make_client(**store_settings)
    collection = f"scripts_{len(store_settings)}"
    docs = [{"text": text, "document_id": lang} for lang, text in DOCS.items()]
    r = client.post("/ingest/batch", json={"documents": docs, "collection": collection})
    assert r.status_code == 200, r.text
    for lang, query in QUERIES.items():
        body = {"query": query, "collection": collection, "strategy": "sparse", "generate": False}
        r = client.post("/query", json={**body, "top_k": 5, "top_n": 5})
        assert r.status_code == 200, r.text
        found = [s["document_id"] for s in r.json()["sources"]]
        assert found == [lang], (lang, query, found)
    # Hybrid puts it first too.
    body = {"query": QUERIES["ja"], "collection": collection, "generate": False}
    r = client.post("/query", json=body)
    assert r.json()["sources"][0]["document_id"] == "ja"


def _legacy_qdrant_collection(client: TestClient, name: str) -> None:
    """A collection as rag_pipeline 0.2.0 made it: sparse vector "bm25" (tokenizer ascii-v1)."""
    qdrant = client.app.state.pipeline.store.client  # type: ignore[attr-defined]
    qdrant.create_collection(
        name,
        vectors_config={"dense": models.VectorParams(size=384, distance=models.Distance.COSINE)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )


def test_a_collection_of_the_old_tokenizer_is_refused_until_reindexed(
    make_client: Callable[..., TestClient], store_settings: dict[str, object]
) -> None:
    client = make_client(**store_settings)
    name = f"old_tokenizer_{len(store_settings)}"
    if store_settings:
        doc = {"text": "an old collection", "document_id": "old", "collection": name}
        assert client.post("/ingest", json=doc).status_code == 200
        # What an older version stored: no tokenizer in the registry.
        with connect(str(store_settings["pgvector_dsn"]), autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE rag_collections SET sparse_tokenizer = NULL WHERE name = %s"),
                (name,),
            )
    else:
        _legacy_qdrant_collection(client, name)
    r = client.post("/ingest", json={"text": "Straße", "collection": name})
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert LEGACY_TOKENIZER in detail and TOKENIZER in detail and "Re-index" in detail
    for strategy in ("sparse", "hybrid"):
        body = {"query": "old", "collection": name, "strategy": strategy, "generate": False}
        r = client.post("/query", json=body)
        assert r.status_code == 409, (strategy, r.text)
        assert "Re-index" in r.json()["detail"]
    body = {"query": "old", "collection": name, "strategy": "dense", "generate": False}
    assert client.post("/query", json=body).status_code == 200
    assert client.get("/documents", params={"collection": name}).status_code == 200
