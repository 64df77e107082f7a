"""Ingestion throughput: /ingest/batch documents/s vs raw sentence-transformers encode of the
same chunk texts (same model, same batch size, same machine). Anchor: ratio >= 0.9."""

from __future__ import annotations

import os
import tempfile
import time

import httpx
from rag_common import load_cisi, service

ANCHOR = 0.9
BATCH_DOCS = 200


def run() -> dict[str, float]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    docs, _, _ = load_cisi()
    items = [{"text": t, "document_id": i} for i, t in docs.items()]
    from rag_pipeline.chunking import chunk_words
    from rag_pipeline.embeddings import LocalEmbedder
    from rag_pipeline.settings import Settings

    s = Settings()
    texts = [c for t in docs.values() for c in chunk_words(t, s.chunk_size, s.chunk_overlap)]
    emb = LocalEmbedder(batch_size=s.embedding_batch_size)
    emb.embed(texts[:64])  # warm-up
    t0 = time.perf_counter()
    for start in range(0, len(texts), 10_000):
        emb.model.encode(
            texts[start : start + 10_000],
            batch_size=s.embedding_batch_size,
            normalize_embeddings=True,
        )
    raw_s = time.perf_counter() - t0
    del emb
    with (
        tempfile.TemporaryDirectory(prefix="rag-ingest-") as tmp,
        service({"QDRANT_PATH": tmp}) as url,
        httpx.Client(base_url=url, timeout=600) as c,
    ):
        c.post("/ingest", json={"text": "warm up", "collection": "warm"}).raise_for_status()
        t0 = time.perf_counter()
        for start in range(0, len(items), BATCH_DOCS):
            c.post(
                "/ingest/batch", json={"documents": items[start : start + BATCH_DOCS]}
            ).raise_for_status()
        svc_s = time.perf_counter() - t0
    raw_dps, svc_dps = len(docs) / raw_s, len(docs) / svc_s
    ratio = svc_dps / raw_dps
    print(f"documents={len(docs)} chunks={len(texts)}")
    print(f"raw encode: {raw_dps:.1f} docs/s ({raw_s:.1f} s)")
    print(f"/ingest/batch: {svc_dps:.1f} docs/s ({svc_s:.1f} s)")
    print(f"ratio service/raw = {ratio:.3f} (anchor >= {ANCHOR})")
    return {
        "docs": len(docs),
        "chunks": len(texts),
        "raw_dps": raw_dps,
        "svc_dps": svc_dps,
        "ratio": ratio,
    }


if __name__ == "__main__":
    run()
