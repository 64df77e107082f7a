"""The configured size limits of a document, checked the same way for HTTP and in process.

The request models check what every store can keep (strings, numbers, the depth cap); these are
the operator's limits (MAX_DOCUMENT_CHARS, MAX_METADATA_*), which depend on the settings.
"""

from __future__ import annotations

from typing import Any

from rag_pipeline.models import metadata_bytes, metadata_shape
from rag_pipeline.settings import Settings


class LimitExceededError(ValueError):
    """A document over a configured limit; ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_document(
    text: str, metadata: dict[str, Any], settings: Settings, prefix: str = ""
) -> None:
    """Raise LimitExceededError naming the field (``prefix`` + text/metadata) and the setting."""
    if len(text) > settings.max_document_chars:
        raise LimitExceededError(
            413,
            f"{prefix}text has {len(text)} characters; the limit is"
            f" {settings.max_document_chars} (MAX_DOCUMENT_CHARS)",
        )
    field = f"{prefix}metadata"
    shape = metadata_shape(metadata, field)
    if shape.depth > settings.max_metadata_depth:
        raise LimitExceededError(
            422,
            f"{field} is nested {shape.depth} levels deep; the limit is"
            f" {settings.max_metadata_depth} (MAX_METADATA_DEPTH)",
        )
    if shape.keys > settings.max_metadata_keys:
        raise LimitExceededError(
            413,
            f"{field} has {shape.keys} keys; the limit is {settings.max_metadata_keys}"
            " (MAX_METADATA_KEYS)",
        )
    size = metadata_bytes(metadata)
    if size > settings.max_metadata_bytes:
        raise LimitExceededError(
            413,
            f"{field} has {size} bytes as JSON; the limit is {settings.max_metadata_bytes}"
            " (MAX_METADATA_BYTES); it is stored with every chunk",
        )
