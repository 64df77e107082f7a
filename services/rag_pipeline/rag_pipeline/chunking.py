"""Sliding-window chunking on word boundaries."""

from __future__ import annotations


def chunk_words(text: str, size: int = 512, overlap: int = 50) -> list[str]:
    """Split text into windows of ``size`` words, consecutive windows sharing ``overlap`` words."""
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
        # The last window already reached the end: another would only repeat the overlap.
        if start + size >= len(words):
            break
    return chunks
