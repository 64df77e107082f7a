"""BM25-style sparse vectors.

Documents carry the BM25 term-frequency part (saturation and length normalisation); the IDF part
is applied at query time by the store (Qdrant's ``modifier: idf``, or SQL over the terms table in
pgvector), so it never goes stale as documents are added. Queries carry the query term counts.
The average document length is a setting (``BM25_AVGDL``) because it must be fixed at indexing
time; retrieval quality is flat over a wide range (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass

TOKEN_RE = re.compile(r"[a-z0-9]+")

# A short, generic English stop list: these words carry no topic and dominate document length.
STOP_WORDS = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "which",
        "what",
        "how",
        "why",
        "who",
        "whom",
        "these",
        "those",
        "such",
        "not",
        "no",
        "can",
        "any",
        "all",
        "been",
        "being",
        "do",
        "does",
        "did",
        "about",
        "also",
        "than",
        "then",
        "there",
        "they",
        "we",
        "you",
        "your",
        "our",
        "i",
        "me",
        "my",
        "he",
        "she",
        "his",
        "her",
        "them",
        "us",
        "if",
        "so",
        "very",
        "more",
        "most",
        "other",
        "some",
        "only",
        "same",
        "both",
        "each",
        "few",
    )
)


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens without stop words."""
    return [t for t in TOKEN_RE.findall(text.lower()) if t not in STOP_WORDS]


def term_id(token: str) -> int:
    """Stable 32-bit id of a token (collisions are rare and only blur two rare terms)."""
    return zlib.crc32(token.encode("utf-8"))


class BM25Encoder:
    """Encodes documents and queries to sparse vectors keyed by term id."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, avgdl: float = 100.0) -> None:
        self.k1, self.b, self.avgdl = k1, b, avgdl

    def encode_document(self, text: str) -> SparseVector:
        tokens = tokenize(text)
        counts = Counter(term_id(t) for t in tokens)
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avgdl)
        items = sorted(counts.items())
        return SparseVector(
            [i for i, _ in items], [tf * (self.k1 + 1) / (tf + norm) for _, tf in items]
        )

    def encode_query(self, text: str) -> SparseVector:
        # Query term counts: a term repeated in the query matters more (as in Okapi BM25).
        items = sorted(Counter(term_id(t) for t in tokenize(text)).items())
        return SparseVector([i for i, _ in items], [float(c) for _, c in items])
