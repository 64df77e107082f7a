"""Ingestion throughput: /ingest/batch documents/s vs raw sentence-transformers encode of the same
chunk texts (same model, batch size 64). Anchor: ratio >= 0.9.

The machine is shared and its background load moves by tens of percent from minute to minute,
so the raw encode and the service are interleaved batch by batch: for each batch of BATCH_DOCS
documents, first `encode` of exactly that batch's chunk texts in this process, then the
`/ingest/batch` request with those documents. Both see the same load; totals are compared.
Measured twice: embedded Qdrant in memory (pipeline overhead alone) and on disk (what `make up`
uses; qdrant-client's local mode commits SQLite once per point, which costs a few percent).
"""

from __future__ import annotations

import os
import tempfile
import time

import httpx
from rag_common import load_cisi, service

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from rag_pipeline.embeddings import LocalEmbedder  # after HF_HUB_OFFLINE

ANCHOR = 0.9
BATCH_DOCS = 250


def chunk_texts(emb: LocalEmbedder, texts: list[str]) -> list[str]:
    """What the service embeds for ``texts`` with its default settings: its own chunker."""
    from rag_pipeline.chunking import chunk_document, chunker_config
    from rag_pipeline.settings import Settings

    s = Settings()
    counter = emb.token_counter()
    config = chunker_config(counter, s.chunk_size, s.chunk_overlap)
    return [c.embed_text for t in texts for c in chunk_document(t, counter, config)]


def measure(
    env: dict[str, str], items: list[dict[str, str]], emb: LocalEmbedder
) -> tuple[float, float]:
    from rag_pipeline.settings import Settings

    s = Settings()
    raw_s = svc_s = 0.0
    with service(env) as url, httpx.Client(base_url=url, timeout=600) as c:
        c.post("/ingest", json={"text": "warm up", "collection": "warm"}).raise_for_status()
        for start in range(0, len(items), BATCH_DOCS):
            batch = items[start : start + BATCH_DOCS]
            texts = chunk_texts(emb, [d["text"] for d in batch])
            t0 = time.perf_counter()
            emb.model.encode(texts, batch_size=s.embedding_batch_size, normalize_embeddings=True)
            raw_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            c.post("/ingest/batch", json={"documents": batch}).raise_for_status()
            svc_s += time.perf_counter() - t0
    return raw_s, svc_s


def run() -> dict[str, float]:
    from rag_pipeline.settings import Settings

    docs, _, _ = load_cisi()
    items = [{"text": t, "document_id": i} for i, t in docs.items()]
    s = Settings()
    emb = LocalEmbedder(batch_size=s.embedding_batch_size)
    chunks = len(chunk_texts(emb, list(docs.values())))
    emb.embed(["warm up"])
    out: dict[str, float] = {"docs": len(docs), "chunks": chunks}
    print(f"documents={len(docs)} chunks={chunks} batch={BATCH_DOCS} docs")
    with tempfile.TemporaryDirectory(prefix="rag-ingest-") as tmp:
        for store, env in (("memory", {}), ("disk", {"QDRANT_PATH": tmp})):
            raw_s, svc_s = measure(env, items, emb)
            raw_dps, svc_dps = len(docs) / raw_s, len(docs) / svc_s
            out[f"{store}_raw_dps"], out[f"{store}_svc_dps"] = raw_dps, svc_dps
            out[f"{store}_ratio"] = svc_dps / raw_dps
            print(
                f"qdrant {store:6s}: raw encode {raw_dps:.1f} docs/s ({raw_s:.1f} s),"
                f" /ingest/batch {svc_dps:.1f} docs/s ({svc_s:.1f} s),"
                f" ratio {svc_dps / raw_dps:.3f} (anchor >= {ANCHOR})",
                flush=True,
            )
    return out


if __name__ == "__main__":
    run()
