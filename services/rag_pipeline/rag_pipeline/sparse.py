"""BM25-style sparse vectors.

Documents carry the BM25 term-frequency part (saturation and length normalisation); the IDF part
is applied at query time by the store (Qdrant's ``modifier: idf``, or SQL over the terms table in
pgvector), so it never goes stale as documents are added. Queries carry the query term counts.
The average document length is a setting (``BM25_AVGDL``) because it must be fixed at indexing
time; retrieval quality is flat over a wide range (see benchmarks/RESULTS.md).

Tokenizer ``unicode-v2`` (TOKENIZER): NFKC, then case folding (``ß`` -> ``ss``, ``Ǆ`` -> ``ǆ``),
then runs of letters, digits and combining marks of every script are words; runs of Han,
Hiragana, Katakana and Hangul (scripts written without spaces between words) become overlapping
character bigrams (a lone character stays a unigram), as Lucene's CJKBigramFilter does: no
dictionary to pin or ship, and a query matches any document sharing its bigrams whatever the
word boundaries a segmenter would have guessed. The English stop list applies to words only.
The tokenizer is part of the collection layout (the sparse vector's name, see layout.py), so a
collection is never queried with another tokenizer than the one that indexed it.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass

import regex

# The version of tokenize() below. Changing what tokenize() returns for any text means a new
# version (and a new sparse vector name in the layout): stored term ids would no longer match.
TOKENIZER = "unicode-v2"
# rag_pipeline 0.2.0 and earlier: lower-cased ASCII [a-z0-9]+ runs (non-ASCII letters lost).
LEGACY_TOKENIZER = "ascii-v1"

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
# A CJK run, or a run of letters/digits/marks of any other script. ー (U+30FC, the katakana
# length mark) and 々 are Common/Han-adjacent marks that belong inside CJK words.
TOKEN_RE = regex.compile(
    rf"(?P<cjk>[{_CJK}\u30fc\u3005]+)|[\p{{L}}\p{{N}}\p{{M}}--{_CJK}]+", regex.VERSION1
)

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


def words(text: str) -> list[str]:
    """Normalised tokens (tokenizer TOKENIZER), stop words kept: NFKC + case folding, words of
    every script, CJK runs as character bigrams."""
    out: list[str] = []
    for match in TOKEN_RE.finditer(unicodedata.normalize("NFKC", text).casefold()):
        token = match.group()
        if match.group("cjk") is None or len(token) == 1:
            out.append(token)
        else:
            out.extend(token[i : i + 2] for i in range(len(token) - 1))
    return out


def tokenize(text: str) -> list[str]:
    """BM25 terms: ``words(text)`` without the stop words."""
    return [t for t in words(text) if t not in STOP_WORDS]


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
