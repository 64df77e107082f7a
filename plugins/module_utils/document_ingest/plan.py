# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What document_ingest has to do: the documents of the files, which of them the collection
already holds, which stored documents can be pruned, and the requests to send."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from ansible_collections.aistack.platform.plugins.module_utils.documents import (
    Extracted,
    SourceFile,
)

MARK = "aistack.platform.document_ingest"
CHANGES = ("ingested", "updated", "removed")  # file statuses that change the collection
T = TypeVar("T")


@dataclass
class Document:
    """One file as the module sends it."""

    source: SourceFile
    text: str
    metadata: dict[str, Any]
    text_hash: str

    @property
    def document_id(self) -> str:
        return self.source.document_id

    def payload(self) -> dict[str, Any]:
        """The document as POST /ingest/batch (and rag_pipeline.embedded) take it."""
        return {"text": self.text, "document_id": self.document_id, "metadata": self.metadata}


def text_hash(text: str) -> str:
    """SHA-256 (hex) of the UTF-8 text: what the RAG service (0.3.0+) lists as ``text_hash``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_document(source: SourceFile, extracted: Extracted, extra: dict[str, Any]) -> Document:
    """The document of one file: the task's metadata, the file's, then the module's marks."""
    metadata = dict(extra)
    metadata.update(extracted.metadata)
    metadata.update(source_path=source.path, format=source.format, ingested_by=MARK)
    return Document(source, extracted.text, metadata, text_hash(extracted.text))


def canonical(value: Any) -> str:
    """``value`` as canonical JSON (sorted keys, compact): equal strings, equal JSON values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def is_unchanged(doc: Document, stored: dict[str, Any]) -> bool | None:
    """Whether the collection holds ``doc`` as it is; None when the target cannot tell.

    Unchanged: the stored ``text_hash`` is the hash of the text and the stored metadata is
    the metadata the module would send, or differs only in ``source_path`` - the same files
    read from another checkout, CI workspace or mount point are not worth re-embedding.
    A target that lists no ``text_hash`` (a RAG service older than 0.3.0, or a document it
    has not re-written since) cannot tell: the document is sent and the service decides.
    """
    if stored.get("text_hash") is None:
        return None
    if stored["text_hash"] != doc.text_hash:
        return False
    have = stored.get("metadata") or {}
    if canonical(have) == canonical(doc.metadata):
        return True
    if not have.get("source_path"):
        return False
    return canonical(have) == canonical({**doc.metadata, "source_path": have["source_path"]})


def prunable(
    existing: dict[str, dict[str, Any]], base_dir: str, current_ids: set[str]
) -> list[str]:
    """Stored documents this module ingested from under base_dir whose file is gone."""
    out = []
    for document_id, info in sorted(existing.items()):
        meta = info.get("metadata") or {}
        source_path = str(meta.get("source_path") or "")
        inside = os.path.commonpath([base_dir, source_path or "/"]) == base_dir
        if meta.get("ingested_by") == MARK and inside and document_id not in current_ids:
            out.append(document_id)
    return out


def batches(
    items: list[tuple[T, dict[str, Any]]], batch_size: int, max_bytes: int
) -> list[list[tuple[T, dict[str, Any]]]]:
    """Split (key, document) pairs into requests bounded by count and encoded size."""
    out: list[list[tuple[T, dict[str, Any]]]] = []
    current: list[tuple[T, dict[str, Any]]] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item[1], ensure_ascii=False).encode("utf-8"))
        if current and (len(current) >= batch_size or size + item_size > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        out.append(current)
    return out


def version(info: dict[str, Any] | None) -> dict[str, Any]:
    """A document version as the diff shows it."""
    info = info or {}
    return {"text_hash": info.get("text_hash"), "metadata": info.get("metadata") or {}}


def diff(
    collection: str,
    entries: dict[str, dict[str, Any]],
    existing: dict[str, dict[str, Any]],
    documents: dict[str, Document],
) -> dict[str, Any]:
    """Before and after of every document created, updated or removed (or, in check mode,
    that would be)."""
    changed = [d for d in sorted(entries) if entries[d].get("status") in CHANGES]
    header = f"{collection} (document_id: text_hash, metadata)"
    return {
        "before": {d: version(existing[d]) for d in changed if d in existing},
        "after": {
            d: {"text_hash": documents[d].text_hash, "metadata": documents[d].metadata}
            for d in changed
            if d in documents
        },
        "before_header": header,
        "after_header": header,
    }
