"""Query latency without generation: p50/p99 over HTTP at 1 and 16 concurrent clients, and the
ratio of the 1-client p50 to one query embedding + the same store search done directly with the
libraries on a copy of the same embedded Qdrant collection. Anchor: ratio <= 1.5.

Each strategy is compared with the library calls it makes: dense = sentence-transformers encode
+ one dense `query_points` (limit 10); hybrid = encode + the dense and the BM25 sparse
`query_points` (limit 100 each, the fusion depth). The hybrid service is also shown against the
dense-only baseline, which includes the cost of the second search (embedded Qdrant scores sparse
vectors in Python over every point; a Qdrant server uses its inverted index).

The machine is shared, so the 1-client service calls (hybrid and dense) and the direct calls are
interleaved query by query: all three see the same background load.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from rag_common import load_cisi, service

ANCHOR = 1.5
N_QUERIES = 150
N_CONCURRENT = 320


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def concurrent(url: str, queries: list[str], clients: int, strategy: str) -> list[float]:
    lat: list[float] = []
    lock = threading.Lock()
    it = iter(range(N_CONCURRENT))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            for n in it:
                body = {"query": queries[n % len(queries)], "generate": False, "strategy": strategy}
                t0 = time.perf_counter()
                c.post("/query", json=body).raise_for_status()
                with lock:
                    lat.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat


def direct_hybrid(
    client: Any, model: Any, bm25: Any, query: str, collection: str = "documents"
) -> tuple[list[Any], list[Any]]:
    """The service's two searches made with the libraries: one encode, the dense and the BM25
    ``query_points`` at the fusion depth (100), the vectors named as the service names them."""
    from qdrant_client import models

    from rag_pipeline.layout import DENSE, SPARSE

    v = model.encode([query], normalize_embeddings=True)[0]
    sv = bm25.encode_query(query)
    dense = client.query_points(
        collection, query=v.tolist(), using=DENSE, limit=100, with_payload=True
    ).points
    sparse = client.query_points(
        collection,
        query=models.SparseVector(indices=sv.indices, values=sv.values),
        using=SPARSE,
        limit=100,
        with_payload=True,
    ).points
    return dense, sparse


def run() -> dict[str, float]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from qdrant_client import QdrantClient
    from sentence_transformers import SentenceTransformer

    from rag_pipeline.embeddings import bundled_model_path
    from rag_pipeline.layout import DENSE
    from rag_pipeline.sparse import BM25Encoder

    docs, queries_d, _ = load_cisi()
    queries = list(queries_d.values())
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rag-latency-") as tmp:
        store_dir, copy_dir = Path(tmp, "service"), Path(tmp, "direct")
        with service({"QDRANT_PATH": str(store_dir)}) as url:
            items = [{"text": t, "document_id": i} for i, t in docs.items()]
            with httpx.Client(base_url=url, timeout=600) as c:
                for s in range(0, len(items), 250):
                    body = {"documents": items[s : s + 250]}
                    c.post("/ingest/batch", json=body).raise_for_status()
                shutil.copytree(store_dir, copy_dir, ignore=shutil.ignore_patterns(".lock"))
                model = SentenceTransformer(bundled_model_path(), device="cpu")
                direct = QdrantClient(path=str(copy_dir))
                bm25 = BM25Encoder()
                series: dict[str, list[float]] = {
                    "hybrid": [],
                    "dense": [],
                    "direct": [],
                    "direct_hybrid": [],
                }
                for n in range(N_QUERIES + 10):
                    q = queries[n % len(queries)]
                    for strategy in ("hybrid", "dense"):
                        body = {"query": q, "generate": False, "strategy": strategy}
                        t0 = time.perf_counter()
                        c.post("/query", json=body).raise_for_status()
                        series[strategy].append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    v = model.encode([q], normalize_embeddings=True)[0]
                    direct.query_points(
                        "documents", query=v.tolist(), using=DENSE, limit=10, with_payload=True
                    )
                    series["direct"].append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    direct_hybrid(direct, model, bm25, q)
                    series["direct_hybrid"].append((time.perf_counter() - t0) * 1000)
                direct.close()
            for name, lat in series.items():
                lat = lat[10:]  # the first ten are warm-up
                out[f"{name}_c1_p50"], out[f"{name}_c1_p99"] = statistics.median(lat), pct(lat, 99)
            for strategy in ("hybrid", "dense"):
                lat = concurrent(url, queries, 16, strategy)
                out[f"{strategy}_c16_p50"], out[f"{strategy}_c16_p99"] = (
                    statistics.median(lat),
                    pct(lat, 99),
                )
    out["direct_p50"] = out["direct_c1_p50"]
    out["direct_hybrid_p50"] = out["direct_hybrid_c1_p50"]
    out["ratio_hybrid"] = out["hybrid_c1_p50"] / out["direct_hybrid_p50"]
    out["ratio_dense"] = out["dense_c1_p50"] / out["direct_p50"]
    out["ratio_hybrid_vs_dense_baseline"] = out["hybrid_c1_p50"] / out["direct_p50"]
    for strategy in ("hybrid", "dense"):
        for clients in (1, 16):
            p50, p99 = out[f"{strategy}_c{clients}_p50"], out[f"{strategy}_c{clients}_p99"]
            print(f"{strategy:6s} clients={clients:2d} p50={p50:.1f} ms p99={p99:.1f} ms")
    print(f"direct embed+search p50={out['direct_p50']:.1f} ms p99={out['direct_c1_p99']:.1f} ms")
    print(
        f"direct embed+dense+sparse search p50={out['direct_hybrid_p50']:.1f} ms"
        f" p99={out['direct_hybrid_c1_p99']:.1f} ms"
    )
    print(
        f"ratio p50 service/direct (same searches): hybrid {out['ratio_hybrid']:.2f},"
        f" dense {out['ratio_dense']:.2f} (anchor <= {ANCHOR});"
        f" hybrid vs dense-only baseline {out['ratio_hybrid_vs_dense_baseline']:.2f}"
    )
    return out


if __name__ == "__main__":
    run()
