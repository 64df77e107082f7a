"""The store interface the pipeline relies on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from rag_pipeline.sparse import SparseVector


class StoreUnavailableError(RuntimeError):
    """The vector store cannot be reached (maps to HTTP 503)."""


class CollectionNotFoundError(LookupError):
    """The named collection does not exist (maps to HTTP 404)."""


class CollectionMismatchError(ValueError):
    """The collection exists with a vector layout the embedder cannot fill (maps to HTTP 409)."""


def mismatch(name: str, found: str, dimension: int) -> CollectionMismatchError:
    return CollectionMismatchError(
        f"collection {name!r} {found}, but the embedding model produces {dimension}-dimensional "
        "dense vectors; recreate the collection (qdrant_collection with recreate: true) or use "
        "another collection"
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


@dataclass
class DocumentInfo:
    document_id: str
    content_hash: str
    chunks: int
    metadata: dict[str, Any] = field(default_factory=dict)


class VectorStore(ABC):
    """Chunks with a named dense vector, a BM25 sparse vector and a payload.

    Payload keys used by the pipeline: document_id, content_hash, chunk_index, chunks_total,
    text, metadata.
    """

    kind: str = "store"

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailableError when the store cannot be reached."""

    @abstractmethod
    def collection_exists(self, name: str) -> bool: ...

    @abstractmethod
    def ensure_collection(self, name: str, dimension: int) -> bool:
        """Create the collection if missing; return True when it was created."""

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
