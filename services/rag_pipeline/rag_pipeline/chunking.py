"""Chunking to the embedder's window.

Chunks are measured in the embedder's own tokens (the local model's tokenizer, a configured
tokenizer for a remote embedder, or a conservative estimate), end on sentence or word
boundaries, and carry the document's title and Markdown heading path into the text that is
embedded. No chunk, prefix included, is longer than the model reads: ``chunk_document``
re-counts every chunk with the tokenizer and shortens it when needed.

The default (CHUNK_SIZE 0) keeps a section that fits the window whole and cuts a longer one
into passages of half the window that overlap by half: a whole abstract embeds better than its
halves, while in a long text a short passage-sized window matches a question better than a
full window of mixed topics (MiniLM was trained on 128-token inputs), and with half overlap
every passage of up to a quarter window lies whole inside one chunk (measured in
benchmarks/RESULTS.md, "RAG retrieval on long documents").
"""

from __future__ import annotations

import bisect
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Protocol

from rag_pipeline.stores.base import CollectionMismatchError

# The recorded chunker's format; bump when chunk boundaries change for the same settings.
CHUNKER_VERSION = 2
# Default chunk size when CHUNK_SIZE is 0 (auto): the model's window, at most this many tokens.
# Passage-sized chunks (a few hundred tokens) are what dense retrievers are trained on; a
# remote model with an 8k window would otherwise get whole chapters per vector.
AUTO_CHUNK_TOKENS = 256
# At most this share of a chunk goes to the title/heading prefix (longer prefixes are cut).
MAX_PREFIX_SHARE = 0.5

_WORD = re.compile(r"\S+")
_PIECE = re.compile(r"[^\W_]+|[\W_]")
_SENTENCE_END = re.compile(r"[.!?;:][\"'\u201d\u2019)\]]*$|[\u3002\uff01\uff1f]$")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


class ChunkingConfigError(CollectionMismatchError):
    """The chunking settings cannot be used: chunks would be truncated by the embedder, or
    the collection was made with another chunker (maps to HTTP 409)."""


class TokenCounter(Protocol):
    """The embedder's tokenizer as the chunker needs it."""

    name: str
    window: int  # the model's maximum sequence length, special tokens included
    special_tokens: int  # added to every text ([CLS] and [SEP] for BERT models)

    def word_tokens(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, tokens) of every whitespace-separated word of ``text``."""
        ...

    def count(self, text: str) -> int:
        """Tokens of ``text`` without the special tokens."""
        ...


class HFTokenCounter:
    """A Hugging Face (fast) tokenizer: exact counts through its offsets."""

    def __init__(self, tokenizer: Any, window: int, name: str) -> None:
        self.tokenizer = tokenizer
        self.window = int(window)
        self.name = name
        self.special_tokens = int(tokenizer.num_special_tokens_to_add(pair=False))

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def word_tokens(self, text: str) -> list[tuple[int, int, int]]:
        offsets = self.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )["offset_mapping"]
        starts = [s for s, e in offsets if e > s]
        out = []
        for m in _WORD.finditer(text):
            lo = bisect.bisect_left(starts, m.start())
            hi = bisect.bisect_left(starts, m.end())
            out.append((m.start(), m.end(), hi - lo))
        return out


class EstimatedTokenCounter:
    """No tokenizer known (a remote embedder without EMBEDDING_TOKENIZER): every punctuation
    mark one token, every run of letters and digits one token per two UTF-8 bytes (at least
    one). Real tokenizers average 3-4 bytes per token on prose, about one token per CJK
    character (3 bytes) and at most one per punctuation mark, so this over-counts: chunks come
    out smaller than the window, never longer."""

    special_tokens = 2

    def __init__(self, window: int) -> None:
        self.window = int(window)
        self.name = "estimate:utf8/2"

    @staticmethod
    def _word(word: str) -> int:
        return sum(
            max(1, math.ceil(len(piece.encode("utf-8")) / 2)) if piece[0].isalnum() else 1
            for piece in _PIECE.findall(word)
        )

    def count(self, text: str) -> int:
        return sum(self._word(m.group()) for m in _WORD.finditer(text))

    def word_tokens(self, text: str) -> list[tuple[int, int, int]]:
        return [(m.start(), m.end(), self._word(m.group())) for m in _WORD.finditer(text)]


def load_tokenizer(name: str, window: int) -> HFTokenCounter:
    """EMBEDDING_TOKENIZER for a remote embedder: a tokenizer folder or Hugging Face name
    (from the local cache; nothing is downloaded at run time)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ChunkingConfigError(
            "EMBEDDING_TOKENIZER needs the transformers package (the 'local' extra)"
        ) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        raise ChunkingConfigError(f"EMBEDDING_TOKENIZER={name!r} cannot be loaded: {exc}") from exc
    return HFTokenCounter(tokenizer, window, os.path.basename(name.rstrip("/")) or name)


@dataclass(frozen=True)
class ChunkerConfig:
    """What a collection records about how its chunks were cut and BM25-indexed."""

    tokenizer: str
    window: int
    size: int  # tokens per chunk, prefix included, special tokens excluded
    overlap: int
    # Tokens per passage when a section is longer than ``size`` (0: windows of ``size``).
    passage: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": CHUNKER_VERSION,
            "unit": "tokens",
            "tokenizer": self.tokenizer,
            "window": self.window,
            "size": self.size,
            "passage": self.passage,
            "overlap": self.overlap,
            # BM25 has no window: one sparse vector per document, on its first chunk.
            "sparse": "document",
        }


def chunker_config(counter: TokenCounter, size: int, overlap: int | None) -> ChunkerConfig:
    """The chunker for CHUNK_SIZE ``size`` and CHUNK_OVERLAP ``overlap``; ChunkingConfigError
    when chunks would be truncated.

    ``size`` 0 (auto): sections up to the model's window (at most AUTO_CHUNK_TOKENS) stay
    whole, longer ones are cut into passages of half that, overlapping by half (``overlap``
    None). An explicit ``size``: windows of that many tokens, overlapping by an eighth."""
    limit = counter.window - counter.special_tokens
    passage = 0
    if size == 0:
        size = min(limit, AUTO_CHUNK_TOKENS)
        passage = size // 2
    elif size > limit:
        raise ChunkingConfigError(
            f"CHUNK_SIZE={size} tokens is more than the embedder reads: {counter.name} embeds "
            f"at most {counter.window} tokens, {counter.special_tokens} of them special, so "
            f"at most {limit} per chunk; longer chunks would be truncated. Set CHUNK_SIZE to "
            f"at most {limit}, or 0 for the default"
        )
    if overlap is None:
        overlap = passage // 2 if passage else size // 8
    if overlap >= (passage or size):
        unit = (
            f"passage size ({passage} tokens: half of the {size}-token window that "
            "CHUNK_SIZE=0 keeps whole)"
            if passage
            else f"chunk size ({size} tokens)"
        )
        raise ChunkingConfigError(f"CHUNK_OVERLAP={overlap} must be smaller than the {unit}")
    return ChunkerConfig(counter.name, counter.window, size, overlap, passage)


@dataclass
class Chunk:
    text: str  # the body: text[start:end] of the document
    start: int
    end: int
    prefix: str  # title and heading path ("" when none)

    @property
    def embed_text(self) -> str:
        """What is embedded (and BM25-indexed): the prefix, a line break, the body."""
        return f"{self.prefix}\n{self.text}" if self.prefix else self.text


def _sections(text: str) -> list[tuple[list[str], int, int]]:
    """(heading path, start, end) of the Markdown sections of ``text``; headings inside code
    fences do not count. Without headings: one section, the whole text."""
    sections: list[tuple[list[str], int, int]] = []
    path: list[tuple[int, str]] = []
    start = 0
    pos = 0
    fenced = False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line.rstrip("\r\n"))
        if match:
            sections.append(([h for _, h in path], start, pos))
            level = len(match.group(1))
            path = [(lv, h) for lv, h in path if lv < level] + [(level, match.group(2).strip())]
            start = pos + len(line)
        pos += len(line)
    sections.append(([h for _, h in path], start, len(text)))
    return [s for s in sections if text[s[1] : s[2]].strip()]


def _cut_prefix(prefix: str, counter: TokenCounter, budget: int) -> str:
    if not prefix or counter.count(prefix) <= budget:
        return prefix
    total = 0
    end = 0
    for _, stop, n in counter.word_tokens(prefix):
        if total + n > budget:
            break
        total, end = total + n, stop
    return prefix[:end]


def _prefix(path: str, counter: TokenCounter, size: int) -> tuple[str, int]:
    """The title/heading path cut to at most its share of a ``size``-token chunk, and the
    tokens left for the body."""
    prefix = _cut_prefix(path, counter, int(size * MAX_PREFIX_SHARE))
    return prefix, size - (counter.count(prefix) if prefix else 0)


def chunk_document(
    text: str, counter: TokenCounter, config: ChunkerConfig, title: str | None = None
) -> list[Chunk]:
    """Cut ``text`` into chunks of at most ``config.size`` tokens (prefix included), ending at
    sentence ends where one is in the second half of the window, else at a word end;
    consecutive chunks of a section share about ``config.overlap`` tokens (whole words).
    With ``config.passage``, a section that fits ``config.size`` is one chunk and a longer
    one is cut into chunks of ``config.passage`` tokens."""
    title = " ".join((title or "").split())
    chunks: list[Chunk] = []
    sections = _sections(text) or [([], 0, len(text))]
    for headings, sec_start, sec_end in sections:
        path = " > ".join(p for p in [title, *headings] if p)
        section = text[sec_start:sec_end]
        words = counter.word_tokens(section)
        size = config.size
        prefix, budget = _prefix(path, counter, size)
        if config.passage and sum(n for _, _, n in words) > budget:
            size = config.passage
            prefix, budget = _prefix(path, counter, size)
        chunks.extend(
            _fit(Chunk(section[s:e], sec_start + s, sec_start + e, prefix), counter, size)
            for s, e in _windows(section, words, budget, config.overlap)
        )
    return chunks


def _windows(
    section: str, words: list[tuple[int, int, int]], budget: int, overlap: int
) -> list[tuple[int, int]]:
    """Character spans of the windows over ``words`` (see chunk_document)."""
    if not words:
        return []
    # A word longer than the whole budget (a URL, a CJK run without spaces) is cut into pieces.
    pieces: list[tuple[int, int, int]] = []
    for s, e, n in words:
        if n <= budget:
            pieces.append((s, e, n))
            continue
        parts = math.ceil(n / budget)
        step = math.ceil((e - s) / parts)
        for p in range(s, e, step):
            q = min(e, p + step)
            pieces.append((p, q, math.ceil(n * (q - p) / (e - s))))
    words = pieces
    ends = [
        bool(_SENTENCE_END.search(section[s:e]))
        or (i + 1 < len(words) and "\n\n" in section[e : words[i + 1][0]])
        for i, (s, e, _) in enumerate(words)
    ]
    prefix = [0]
    for _, _, n in words:
        prefix.append(prefix[-1] + n)
    spans = []
    i = 0
    while i < len(words):
        # The longest run of words from i within the budget: words[i:j].
        j = bisect.bisect_right(prefix, prefix[i] + budget, lo=i + 1) - 1
        j = max(j, i + 1)
        if j < len(words):
            # Prefer to end at a sentence end in the second half of the window.
            for k in range(j, i, -1):
                if prefix[k] - prefix[i] < budget / 2:
                    break
                if ends[k - 1]:
                    j = k
                    break
        spans.append((words[i][0], words[j - 1][1]))
        if j >= len(words):
            break
        # The next window starts with the last words of this one, about `overlap` tokens.
        nxt = j
        while nxt - 1 > i and prefix[j] - prefix[nxt - 1] <= overlap:
            nxt -= 1
        i = max(nxt, i + 1)
    return spans


def _fit(chunk: Chunk, counter: TokenCounter, size: int) -> Chunk:
    """Shorten ``chunk`` (whole words from its end) until the tokenizer's count of the text
    that is embedded is within ``size``: word counts need not add up exactly (a tokenizer may
    merge across a boundary), the whole text's count is what the model sees."""
    while counter.count(chunk.embed_text) > size and len(chunk.text) > 1:
        words = list(_WORD.finditer(chunk.text))
        # One word left over the size: drop a tenth of its characters at a time.
        cut = words[-2].end() if len(words) > 1 else max(1, len(chunk.text) * 9 // 10)
        chunk = Chunk(chunk.text[:cut], chunk.start, chunk.start + cut, chunk.prefix)
    return chunk


def merge_context(chunks: list[dict[str, Any]]) -> str:
    """The text of consecutive chunks (payloads, in chunk order) without repeating their
    overlaps: exact when they carry character offsets, else the texts joined."""
    out = ""
    end = None
    for payload in chunks:
        text = str(payload.get("text", ""))
        start, stop = payload.get("start"), payload.get("end")
        if end is None or not isinstance(start, int) or not isinstance(stop, int):
            out = f"{out}\n{text}" if out else text
        elif start >= end:
            out = f"{out}\n{text}"
        else:
            out += text[end - start :]
        end = max(end or 0, stop) if isinstance(stop, int) else None
    return out


def chunk_words(text: str, size: int = 512, overlap: int = 50) -> list[str]:
    """The chunker of rag_pipeline 0.3.0 and earlier (``size`` words, ``overlap`` shared);
    kept for the benchmarks' comparison, not used by the service."""
    if size < 1:
        raise ValueError("size must be >= 1")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be >= 0 and < size")
    words = text.split()
    if not words:
        return []
    step = size - overlap
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start : start + size]))
        if start + size >= len(words):
            break
    return chunks
