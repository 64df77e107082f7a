"""Document identity: content hashes and stable point IDs."""

from __future__ import annotations

import hashlib
import uuid

# Fixed namespace so point IDs are stable across processes and releases.
POINT_NAMESPACE = uuid.UUID("6f1d2c1e-8a5b-5d4e-9c3b-2a1f0e9d8c7b")


def content_hash(text: str) -> str:
    """SHA-256 of the text (UTF-8), hex; also the default document_id."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def point_id(document_id: str, version: str, chunk_index: int) -> str:
    """Stable UUID of one chunk of one version of a document."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}\x00{version}\x00{chunk_index}"))
