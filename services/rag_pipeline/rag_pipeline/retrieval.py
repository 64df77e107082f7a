"""Dense, sparse and hybrid retrieval.

Hybrid = convex combination of per-query normalised scores of the dense and BM25 lists (default:
z-score normalisation over each list's candidates, dense weight 0.65); RRF and min-max are
selectable. A candidate missing from one list gets that list's lowest normalised score (0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag_pipeline.stores.base import Hit


@dataclass
class Candidate:
    id: str
    payload: dict[str, Any]
    score: float  # the retrieval (fused) score that ranked it
    components: dict[str, float] = field(default_factory=dict)


def _normalise(scores: np.ndarray, method: str) -> np.ndarray:
    if scores.size == 0:
        return scores
    if method == "minmax":
        span = scores.max() - scores.min()
        return (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    std = scores.std()
    z = (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)
    # Shift so the weakest candidate is 0, the value a candidate absent from the list gets.
    return z - z.min()


def from_hits(hits: list[Hit], kind: str) -> list[Candidate]:
    return [Candidate(h.id, h.payload, h.score, {kind: h.score}) for h in hits]


def fuse(
    dense: list[Hit],
    sparse: list[Hit],
    method: str = "zscore",
    dense_weight: float = 0.65,
    rrf_k: int = 60,
) -> list[Candidate]:
    """Fuse two ranked lists into one, best first."""
    merged: dict[str, Candidate] = {}
    lists = ((dense, "dense", dense_weight), (sparse, "sparse", 1.0 - dense_weight))
    for hits, kind, weight in lists:
        if not hits:
            continue
        raw = np.array([h.score for h in hits], dtype=np.float64)
        if method == "rrf":
            contrib = 1.0 / (rrf_k + np.arange(1, len(hits) + 1))
        else:
            contrib = weight * _normalise(raw, "minmax" if method == "minmax" else "zscore")
        for hit, value in zip(hits, contrib, strict=True):
            cand = merged.get(hit.id)
            if cand is None:
                cand = merged[hit.id] = Candidate(hit.id, hit.payload, 0.0)
            cand.score += float(value)
            cand.components[kind] = hit.score
    return sorted(merged.values(), key=lambda c: c.score, reverse=True)
