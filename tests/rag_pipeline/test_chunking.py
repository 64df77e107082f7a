"""Chunking to the embedder's window (issue #14): chunks measured in the bundled MiniLM's own
tokens, boundaries, overlap, titles and heading paths, documents ranked by their best chunk,
neighbouring chunks as context, the refusal of a truncating configuration, and collections
that record no chunker (rag_pipeline 0.3.0)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag_pipeline.chunking import (
    ChunkingConfigError,
    EstimatedTokenCounter,
    HFTokenCounter,
    chunk_document,
    chunker_config,
    merge_context,
)
from rag_pipeline.embeddings import LocalEmbedder
from rag_pipeline.layout import CHUNKER_KEY
from rag_pipeline.models import DocumentIn, QueryRequest
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings

SENTENCES = [
    "Libraries catalogue their holdings with controlled vocabularies.",
    "Citation indexes link papers that cite one another across decades.",
    "Automatic indexing assigns terms by counting words in the abstract!",
    "Does relevance feedback improve recall in operational systems?",
    "Weighted terms rank documents by their estimated usefulness.",
]
LONG_TITLE = "Information retrieval in special libraries: " + " ".join(["survey"] * 200)


def prose(n: int) -> str:
    return " ".join(f"{SENTENCES[i % len(SENTENCES)]} Item number {i} follows." for i in range(n))


@pytest.fixture(scope="module")
def counter(embedder: LocalEmbedder) -> HFTokenCounter:
    c = embedder.token_counter()
    assert isinstance(c, HFTokenCounter)
    return c


def model_tokens(counter: HFTokenCounter, text: str) -> int:
    """What the model reads of ``text``: its tokens with the special ones, untruncated."""
    return len(counter.tokenizer(text, add_special_tokens=True)["input_ids"])


def test_chunks_fit_the_window_and_keep_boundaries(counter: HFTokenCounter) -> None:
    assert (counter.window, counter.special_tokens) == (256, 2)  # MiniLM: 256 with CLS+SEP
    config = chunker_config(counter, 0, None)
    # The default: sections up to the whole window stay whole, longer ones are cut into
    # passages of half of it that overlap by half.
    assert (config.size, config.passage, config.overlap) == (254, 127, 63)
    url = "https://example.org/" + "segment" * 400  # one "word" of ~800 tokens
    text = prose(60) + "\n\n" + url + "\n\n" + "情報検索" * 300 + " " + prose(20)
    for title in (None, "Retrieval survey", LONG_TITLE):
        chunks = chunk_document(text, counter, config, title)
        assert len(chunks) > 10
        for c in chunks:
            assert model_tokens(counter, c.embed_text) <= counter.window, c
            assert c.text == text[c.start : c.end]
            if title:
                assert c.embed_text.startswith(c.prefix + "\n") and c.prefix
                assert title.startswith(c.prefix)  # cut to at most half a chunk when long
                assert counter.count(c.prefix) <= config.size // 2
        # Every word is in some chunk; consecutive chunks overlap by at most `overlap`.
        covered = [False] * len(text)
        for c in chunks:
            covered[c.start : c.end] = [True] * (c.end - c.start)
        assert all(covered[m.start()] for m in re.finditer(r"\S+", text))
        for a, b in itertools.pairwise(chunks):
            assert b.start > a.start
            if b.start < a.end:
                assert 0 < counter.count(text[b.start : a.end]) <= config.overlap + 8
    # Boundaries: in prose, chunks start and end on whole words, mostly at sentence ends.
    chunks = chunk_document(prose(80), counter, config)
    src = prose(80)
    for c in chunks:
        assert c.start == 0 or src[c.start - 1].isspace()
        assert c.end == len(src) or src[c.end].isspace()
    assert sum(c.text.endswith((".", "!", "?")) for c in chunks) >= len(chunks) - 1
    # Overlap shared between neighbours, and merge_context joins them without repeating it.
    assert all(b.start < a.end for a, b in itertools.pairwise(chunks))
    payloads = [{"text": c.text, "start": c.start, "end": c.end} for c in chunks[:3]]
    assert merge_context(payloads) == src[chunks[0].start : chunks[2].end]


def test_default_keeps_a_fitting_section_whole_and_cuts_longer_ones_into_passages(
    counter: HFTokenCounter,
) -> None:
    config = chunker_config(counter, 0, None)
    short = prose(12)  # well under 254 tokens, more than one passage
    assert config.passage < counter.count(short) <= config.size
    (whole,) = chunk_document(short, counter, config, "Title")
    assert (whole.text, whole.prefix) == (short, "Title")
    long = prose(60)
    chunks = chunk_document(long, counter, config, "Title")
    assert len(chunks) >= 2 * counter.count(long) // config.passage - 1
    for a, b in itertools.pairwise(chunks):
        assert counter.count(a.embed_text) <= config.passage
        # Half overlap: about a quarter window shared, so no passage of that length is split.
        assert config.overlap // 2 <= counter.count(long[b.start : a.end]) <= config.overlap + 8
    # A Markdown section that fits stays whole next to a long one that is cut.
    md = "# Short\n" + short + "\n\n# Long\n" + long
    by_section = [c.prefix for c in chunk_document(md, counter, config)]
    assert by_section.count("Short") == 1 and by_section.count("Long") == len(chunks)
    # An explicit CHUNK_SIZE keeps fixed windows of that size (overlap an eighth).
    fixed = chunker_config(counter, 200, None)
    assert (fixed.size, fixed.passage, fixed.overlap) == (200, 0, 25)
    assert max(counter.count(c.embed_text) for c in chunk_document(long, counter, fixed)) > 127


def test_markdown_heading_path(counter: HFTokenCounter) -> None:
    md = (
        "# Guide\nIntro sentence.\n\n## Install\n```bash\n# a comment, not a heading\n```\n"
        "Run the installer.\n\n### Linux\nUse the package.\n\n## Use\n" + prose(40)
    )
    chunks = chunk_document(md, counter, chunker_config(counter, 64, 8), "Manual")
    prefixes = [c.prefix for c in chunks]
    assert prefixes[:3] == [
        "Manual > Guide",
        "Manual > Guide > Install",
        "Manual > Guide > Install > Linux",
    ]
    assert "# a comment, not a heading" in chunks[1].text
    assert set(prefixes[3:]) == {"Manual > Guide > Use"} and len(prefixes) > 5
    assert all(model_tokens(counter, c.embed_text) <= 64 + 2 for c in chunks)


def test_estimate_over_counts(counter: HFTokenCounter) -> None:
    """A remote embedder without EMBEDDING_TOKENIZER: the estimate never under-counts."""
    estimate = EstimatedTokenCounter(256)
    for text in (
        prose(30),
        "情報検索" * 50,
        "Übergrößenträger " * 40,
        "x = f(a, b) + 3.14159;" * 20,
    ):
        assert estimate.count(text) >= counter.count(text)
    config = chunker_config(estimate, 0, None)
    for c in chunk_document(prose(100), estimate, config, "Title"):
        assert model_tokens(counter, c.embed_text) <= 256


def test_truncating_configuration_is_refused(
    make_client: Callable[..., TestClient], make_pipeline: Callable[..., Pipeline]
) -> None:
    client = make_client(chunk_size=512)
    r = client.post("/ingest", json={"text": "short text", "collection": "refused"})
    assert r.status_code == 409, r.text
    assert "CHUNK_SIZE=512" in r.json()["detail"] and "at most 254" in r.json()["detail"]
    assert "refused" not in {c["name"] for c in client.get("/collections").json()["collections"]}
    with pytest.raises(ChunkingConfigError, match="CHUNK_OVERLAP=300"):
        make_pipeline(chunk_overlap=300).ingest_batch([DocumentIn(text="x")])


STORES = ["qdrant", "pgvector"]


def store_settings(store: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if store == "pgvector":
        return {"vector_store": "pgvector", "pgvector_dsn": request.getfixturevalue("pg_dsn")}
    return {}


def drop_chunker(pipeline: Pipeline, name: str) -> None:
    """Make ``name`` look like a collection of rag_pipeline 0.3.0: no chunker recorded."""
    store: Any = pipeline.store
    if pipeline.settings.vector_store == "pgvector":
        with store._conn() as conn:
            conn.execute("UPDATE rag_collections SET chunker = NULL WHERE name = %s", (name,))
    else:
        store.client.update_collection(name, metadata={CHUNKER_KEY: None})
    assert store.get_chunker(name) is None


@pytest.mark.parametrize("store", STORES)
def test_ranking_by_best_chunk_neighbours_and_recorded_chunker(
    store: str, make_pipeline: Callable[..., Pipeline], request: pytest.FixtureRequest
) -> None:
    settings = {"chunk_size": 48, "chunk_overlap": 6, **store_settings(store, request)}
    pipeline = make_pipeline(**settings)
    name = f"chunks_{store}"
    target = "Volcanic eruptions in Iceland disrupted air traffic over Europe for weeks."
    long_text = prose(12) + " " + target + " " + prose(12)
    docs = [
        DocumentIn(document_id="long", text=long_text, metadata={"title": "Library notes"}),
        DocumentIn(document_id="other", text=prose(6)),
        DocumentIn(document_id="third", text="Geology of volcanoes. " + prose(2)),
    ]
    assert pipeline.ingest_batch(docs, name).results[0].chunks_created > 6
    for strategy in ("hybrid", "dense", "sparse"):
        q = QueryRequest(
            query="volcanic eruption Iceland air traffic",
            collection=name,
            top_k=10,
            top_n=10,
            generate=False,
            strategy=strategy,
        )
        sources = pipeline.query(q).sources
        ids = [s.document_id for s in sources]
        assert len(ids) == len(set(ids)) and ids[0] == "long", (strategy, ids)  # best chunk
        assert sources[0].context is None
        if strategy == "sparse":  # BM25 scores the whole document, on its first chunk
            assert sources[0].chunk_index == 0 and "Iceland" not in sources[0].text
        else:  # the dense side's best chunk
            assert "Iceland" in sources[0].text
    # Neighbours: the best chunk with one chunk on each side, overlaps not repeated.
    q.strategy, q.neighbours = "hybrid", 1
    best = pipeline.query(q).sources[0]
    assert best.context is not None and best.text in best.context
    assert best.context in long_text and len(best.context) > len(best.text) + 100
    assert best.chunk_index > 0
    # The chunker is recorded with the collection, and served with the layout.
    recorded = pipeline.store.get_chunker(name)
    assert recorded == pipeline.chunker()[1].as_dict() == pipeline.layout()["chunker"]
    assert recorded["size"] == 48 and recorded["tokenizer"] == "all-MiniLM-L6-v2"
    # Other chunking settings: refused for this collection, with both chunkers named.
    other = Pipeline(Settings(**{**settings, "chunk_size": 64}), pipeline.store, pipeline.embedder)
    with pytest.raises(ChunkingConfigError, match=r"was chunked with .*\"size\": 48"):
        other.ingest_batch([DocumentIn(text="new words")], name)
    # A collection of 0.3.0 (chunks, no chunker): queries work, ingestion is refused.
    drop_chunker(pipeline, name)
    assert pipeline.query(q).sources[0].document_id == "long"
    with pytest.raises(ChunkingConfigError, match=r"0\.3\.0 or earlier"):
        pipeline.ingest_batch([DocumentIn(text="new words")], name)
    # An empty collection without a chunker (e.g. made by qdrant_collection) is adopted.
    pipeline.store.ensure_collection(f"{name}_empty", pipeline.embedder.dimension)
    assert pipeline.store.get_chunker(f"{name}_empty") is None
    pipeline.ingest_batch([DocumentIn(text="new words")], f"{name}_empty")
    assert pipeline.store.get_chunker(f"{name}_empty") == recorded
