"""Vector stores behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag_pipeline.stores.base import (
    ChunkPoint,
    CollectionMismatchError,
    CollectionNotFoundError,
    DocumentVersion,
    ExistingChunk,
    Hit,
    StoredDocument,
    StoreUnavailableError,
    VectorStore,
)

if TYPE_CHECKING:
    from rag_pipeline.settings import Settings

__all__ = [
    "ChunkPoint",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "DocumentVersion",
    "ExistingChunk",
    "Hit",
    "StoreUnavailableError",
    "StoredDocument",
    "VectorStore",
    "make_store",
]


def make_store(settings: Settings) -> VectorStore:
    if settings.vector_store == "pgvector":
        from rag_pipeline.stores.pgvector import PgVectorStore

        return PgVectorStore(settings.pgvector_dsn or "")
    from rag_pipeline.stores.qdrant import QdrantStore

    return QdrantStore(
        url=settings.qdrant_url,
        api_key=settings.qdrant_api_key,
        path=settings.qdrant_path,
        ca_cert=settings.qdrant_ca_cert,
        verify_tls=settings.qdrant_verify_tls,
        timeout=settings.qdrant_timeout,
    )
