"""Document identity: content and text hashes, stable point IDs."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

# Fixed namespace so point IDs are stable across processes and releases.
POINT_NAMESPACE = uuid.UUID("6f1d2c1e-8a5b-5d4e-9c3b-2a1f0e9d8c7b")


def text_hash(text: str) -> str:
    """SHA-256 (hex) of the document's UTF-8 text alone, stored with every chunk as
    ``text_hash`` so that clients can tell whether their text is what the collection holds."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """SHA-256 (hex) of one version of a document: its UTF-8 text, plus its metadata as
    canonical JSON when there is any, so a metadata-only change is a new version too.

    Without metadata it is the hash of the text alone (text_hash), which is also the default
    document_id.
    """
    digest = hashlib.sha256(text.encode("utf-8"))
    if metadata:
        canonical = json.dumps(
            metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
        digest.update(b"\x00" + canonical.encode("utf-8"))
    return digest.hexdigest()


def point_id(document_id: str, version: str, chunk_index: int) -> str:
    """Stable UUID of one chunk of one version of a document."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}\x00{version}\x00{chunk_index}"))


def head_id(document_id: str) -> str:
    """Stable UUID of the point that names the document's current version (Qdrant)."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"head\x00{document_id}"))


def new_version_id() -> str:
    """A fresh version id: random, so two writers never share chunk point IDs (a version
    written twice with the same content still gets its own points)."""
    return uuid.uuid4().hex
