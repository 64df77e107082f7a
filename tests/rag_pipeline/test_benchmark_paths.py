"""The benchmarks' direct paths, their anchors, stay in step with the service: rag_ingest's raw
encode embeds exactly the chunks the service makes, and rag_latency's direct searches address
the collection's vectors by the names the service gives them (both had fallen behind once:
the 0.3.0 word chunker and the sparse vector's old name)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rag_pipeline.models import DocumentIn
from rag_pipeline.pipeline import Pipeline, embed_text
from rag_pipeline.sparse import BM25Encoder

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
LONG = " ".join(
    f"Passage {i} describes how libraries index their holdings and retrieve them."
    for i in range(40)
)
DOCS = [
    DocumentIn(document_id="short", text="Citation indexes link papers that cite one another."),
    DocumentIn(document_id="long", text=LONG),
]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module


def test_ingest_anchor_embeds_the_service_chunks(
    bench: Callable[[str], ModuleType], make_pipeline: Callable[..., Pipeline], embedder: Any
) -> None:
    rag_ingest = bench("rag_ingest")
    pipeline = make_pipeline()  # the defaults the benchmark's service runs with
    result = pipeline.ingest_batch(DOCS, "bench_ingest")
    texts = rag_ingest.chunk_texts(embedder, [d.text for d in DOCS])
    assert len(texts) == result.chunks_created > 2  # the long text is cut into passages
    vector = embedder.embed_query("libraries").tolist()
    stored = pipeline.store.search_dense("bench_ingest", vector, 100)
    assert sorted(embed_text(h.payload) for h in stored) == sorted(texts)


def test_latency_anchor_searches_both_vectors(
    bench: Callable[[str], ModuleType], make_pipeline: Callable[..., Pipeline], embedder: Any
) -> None:
    rag_latency = bench("rag_latency")
    pipeline = make_pipeline()
    pipeline.ingest_batch(DOCS, "bench_latency")
    client = pipeline.store.client  # type: ignore[attr-defined]
    dense, sparse = rag_latency.direct_hybrid(
        client, embedder.model, BM25Encoder(), "citation indexes", "bench_latency"
    )
    assert len(dense) > 2 and sparse[0].payload["document_id"] == "short"
