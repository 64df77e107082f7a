"""EMBEDDING_BACKEND=openai against infinity-emb serving the bundled MiniLM over loopback."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rag_pipeline.embeddings import LocalEmbedder, OpenAIEmbedder


@pytest.mark.slow
def test_openai_embedder_matches_local(infinity_url: str, embedder: LocalEmbedder) -> None:
    remote = OpenAIEmbedder(infinity_url, "minilm")
    texts = ["GPU time-slicing shares a GPU.", "Longhorn replicates volumes."]
    got = remote.embed(texts)
    assert got.shape == (2, 384) and remote.dimension == 384
    want = embedder.embed(texts)
    assert np.allclose((got * want).sum(axis=1), 1.0, atol=1e-3)  # same model, same vectors
    remote.close()


@pytest.mark.slow
def test_service_with_openai_backend(
    infinity_url: str, embedder: LocalEmbedder, make_client: Callable[..., TestClient]
) -> None:
    from rag_pipeline.main import create_app
    from rag_pipeline.pipeline import Pipeline
    from rag_pipeline.settings import Settings
    from rag_pipeline.stores import make_store

    s = Settings(embedding_backend="openai", embedding_url=infinity_url, embedding_model="minilm")
    with TestClient(create_app(pipeline=Pipeline(s, make_store(s)))) as client:
        assert client.get("/ready").status_code == 200
        client.post(
            "/ingest", json={"document_id": "lh", "text": "Longhorn replicates block volumes."}
        ).raise_for_status()
        client.post(
            "/ingest", json={"document_id": "gpu", "text": "GPU time-slicing shares a GPU."}
        ).raise_for_status()
        r = client.post("/query", json={"query": "storage replication", "generate": False})
        assert r.json()["sources"][0]["document_id"] == "lh"
