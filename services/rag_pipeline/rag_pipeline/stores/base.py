"""The store interface the pipeline relies on."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from rag_pipeline.sparse import SparseVector


class StoreUnavailableError(RuntimeError):
    """The vector store cannot be reached (maps to HTTP 503)."""


class CollectionNotFoundError(LookupError):
    """The named collection does not exist (maps to HTTP 404)."""


class CollectionMismatchError(ValueError):
    """The collection exists with a vector layout the embedder cannot fill (maps to HTTP 409).

    ``layout``: the layout the collection needs (rag_pipeline.layout.collection_layout).
    """

    def __init__(self, message: str, layout: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.layout = layout or {}


def mismatch(name: str, problem: str, layout: dict[str, Any]) -> CollectionMismatchError:
    """The error for collection ``name`` that ``problem``; names the layout to create it with."""
    return CollectionMismatchError(
        f"collection {name!r} {problem}; create it with the layout {json.dumps(layout)} "
        "(aistack.platform.qdrant_collection; recreate: true drops its points) or use another "
        "collection",
        layout,
    )


def size_mismatch(vector: str, size: int, dimension: int) -> str:
    return (
        f"stores {vector!r} vectors of size {size}, but the embedding model produces "
        f"{dimension}-dimensional dense vectors"
    )


@dataclass
class ChunkPoint:
    id: str
    dense: list[float]
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass
class Hit:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass
class ExistingChunk:
    id: str
    document_id: str
    content_hash: str
    chunks_total: int
    text_hash: str | None = None  # None: written before rag_pipeline 0.3.0


@dataclass
class DocumentInfo:
    document_id: str
    content_hash: str
    chunks: int
    metadata: dict[str, Any] = field(default_factory=dict)
    text_hash: str | None = None  # None when any chunk was written before rag_pipeline 0.3.0


class VectorStore(ABC):
    """Chunks with a named dense vector, a BM25 sparse vector and a payload.

    Payload keys used by the pipeline: document_id, content_hash, text_hash, chunk_index,
    chunks_total, text, metadata.
    """

    kind: str = "store"

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailableError when the store cannot be reached."""

    @abstractmethod
    def collection_exists(self, name: str) -> bool: ...

    @abstractmethod
    def check_collection(self, name: str, dimension: int) -> bool:
        """Whether the collection exists; raise CollectionMismatchError when it exists with a
        layout other than collection_layout(dimension)."""

    @abstractmethod
    def ensure_collection(self, name: str, dimension: int) -> bool:
        """Create the collection if missing (else check it); return True when it was created."""

    @abstractmethod
    def list_collections(self) -> list[tuple[str, int]]:
        """(name, number of chunks) for every collection."""

    @abstractmethod
    def delete_collection(self, name: str) -> bool: ...

    @abstractmethod
    def upsert(self, name: str, points: list[ChunkPoint]) -> None: ...

    @abstractmethod
    def existing_chunks(self, name: str, document_ids: list[str]) -> list[ExistingChunk]: ...

    @abstractmethod
    def delete_points(self, name: str, ids: list[str]) -> None: ...

    @abstractmethod
    def delete_document(self, name: str, document_id: str) -> int:
        """Delete every chunk of the document; return how many were removed."""

    @abstractmethod
    def search_dense(self, name: str, vector: list[float], limit: int) -> list[Hit]: ...

    @abstractmethod
    def search_sparse(self, name: str, vector: SparseVector, limit: int) -> list[Hit]: ...

    @abstractmethod
    def list_documents(self, name: str) -> list[DocumentInfo]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
