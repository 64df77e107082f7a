"""Query latency without generation: p50/p99 over HTTP at 1 and 16 concurrent clients, and the
ratio of p50 (1 client) to one query embedding + one store search done directly with the
libraries (sentence-transformers + qdrant-client embedded, dense search of the same collection).
Anchor: ratio <= 1.5. The service is measured with its default (hybrid) strategy and with dense."""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time

import httpx
from rag_common import load_cisi, service

ANCHOR = 1.5
N_QUERIES = 100


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def measure(url: str, queries: list[str], clients: int, strategy: str) -> list[float]:
    lat: list[float] = []
    lock = threading.Lock()
    it = iter(range(N_QUERIES * (2 if clients > 1 else 1)))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for n in it:
                q = queries[n % len(queries)]
                t0 = time.perf_counter()
                c.post(
                    "/query", json={"query": q, "generate": False, "strategy": strategy}
                ).raise_for_status()
                with lock:
                    lat.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat


def direct_baseline(path: str, queries: list[str]) -> list[float]:
    from qdrant_client import QdrantClient
    from rag_pipeline.embeddings import bundled_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(bundled_model_path(), device="cpu")
    client = QdrantClient(path=path)
    lat = []
    for n in range(N_QUERIES):
        q = queries[n % len(queries)]
        t0 = time.perf_counter()
        v = model.encode([q], normalize_embeddings=True)[0]
        client.query_points(
            "documents", query=v.tolist(), using="dense", limit=10, with_payload=True
        )
        lat.append((time.perf_counter() - t0) * 1000)
    client.close()
    return lat


def run() -> dict[str, float]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    docs, queries_d, _ = load_cisi()
    queries = list(queries_d.values())
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rag-latency-") as tmp:
        with service({"QDRANT_PATH": tmp}) as url:
            items = [{"text": t, "document_id": i} for i, t in docs.items()]
            with httpx.Client(base_url=url, timeout=600) as c:
                for s in range(0, len(items), 200):
                    c.post(
                        "/ingest/batch", json={"documents": items[s : s + 200]}
                    ).raise_for_status()
            for strategy in ("hybrid", "dense"):
                measure(url, queries[:10], 1, strategy)  # warm-up
                for clients in (1, 16):
                    lat = measure(url, queries, clients, strategy)
                    out[f"{strategy}_c{clients}_p50"] = statistics.median(lat)
                    out[f"{strategy}_c{clients}_p99"] = pct(lat, 99)
                    print(
                        f"{strategy:6s} clients={clients:2d} n={len(lat)}"
                        f" p50={statistics.median(lat):.1f} ms p99={pct(lat, 99):.1f} ms",
                        flush=True,
                    )
        direct = direct_baseline(tmp, queries)  # after the service released the folder lock
    out["direct_p50"] = statistics.median(direct)
    out["ratio_hybrid"] = out["hybrid_c1_p50"] / out["direct_p50"]
    out["ratio_dense"] = out["dense_c1_p50"] / out["direct_p50"]
    print(f"direct embed+search p50={out['direct_p50']:.1f} ms")
    print(
        f"ratio p50 service/direct: hybrid {out['ratio_hybrid']:.2f},"
        f" dense {out['ratio_dense']:.2f} (anchor <= {ANCHOR})"
    )
    return out


if __name__ == "__main__":
    run()
