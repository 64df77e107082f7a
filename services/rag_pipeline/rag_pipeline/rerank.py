"""Re-ranking of retrieved candidates."""

from __future__ import annotations

import logging

import httpx

from rag_pipeline.retrieval import Candidate
from rag_pipeline.sparse import words

log = logging.getLogger("rag_pipeline.rerank")


class RerankError(RuntimeError):
    pass


def _retrieval_scores(candidates: list[Candidate]) -> list[float]:
    """Retrieval scores scaled to [0, 1] so they mix with [0, 1] signals."""
    scores = [c.score for c in candidates]
    lo, hi = min(scores), max(scores)
    return [(s - lo) / (hi - lo) if hi > lo else 1.0 for s in scores]


def overlap_rerank(
    query: str, candidates: list[Candidate], vector_weight: float = 0.6
) -> list[tuple[Candidate, float]]:
    """Baseline two-signal score: w * retrieval score (scaled to [0, 1] over the candidates) +
    (1 - w) * Jaccard overlap of the query's and the chunk's word sets (the BM25 tokenizer's
    words, stop words kept)."""
    if not candidates:
        return []
    q = set(words(query))
    scored = []
    for cand, vec in zip(candidates, _retrieval_scores(candidates), strict=True):
        t = set(words(str(cand.payload.get("text", ""))))
        jaccard = len(q & t) / len(q | t) if q | t else 0.0
        scored.append((cand, vector_weight * vec + (1 - vector_weight) * jaccard))
    return sorted(scored, key=lambda x: x[1], reverse=True)


def remote_rerank(
    base_url: str, model: str, query: str, candidates: list[Candidate], timeout: float = 30.0
) -> list[tuple[Candidate, float]]:
    """Jina-style POST {base}/v1/rerank (LocalAI, infinity, TEI)."""
    if not candidates:
        return []
    url = base_url.rstrip("/")
    url = url + "/rerank" if url.endswith("/v1") else url + "/v1/rerank"
    body = {
        "model": model,
        "query": query,
        "documents": [str(c.payload.get("text", "")) for c in candidates],
        "top_n": len(candidates),
    }
    try:
        response = httpx.post(url, json=body, timeout=timeout)
        response.raise_for_status()
        results = response.json()["results"]
        scored = [(candidates[r["index"]], float(r["relevance_score"])) for r in results]
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise RerankError(f"rerank backend {url} failed: {exc}") from exc
    return sorted(scored, key=lambda x: x[1], reverse=True)


def no_rerank(candidates: list[Candidate]) -> list[tuple[Candidate, float]]:
    return [(c, c.score) for c in candidates]
