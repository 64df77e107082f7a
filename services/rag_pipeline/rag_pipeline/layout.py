"""The collection layout: named vectors and payload indexes, defined once.

The same dictionary creates collections in the Qdrant store, checks collections that exist,
answers ``GET /collection-layout`` and ``rag-pipeline layout``, and is what playbooks pass to
the ``aistack.platform.qdrant_collection`` module (its ``vectors``, ``sparse_vectors`` and
``payload_indexes`` options take exactly this format).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag_pipeline.sparse import LEGACY_TOKENIZER, TOKENIZER

if TYPE_CHECKING:
    from rag_pipeline.settings import Settings

DENSE = "dense"
# The sparse vector's name records the BM25 tokenizer that filled it (the one home of that
# fact for Qdrant, so a collection made by a playbook from this layout carries it too; pgvector
# keeps it in its registry table). Term ids of another tokenizer never match ours, so a
# collection indexed with another tokenizer is refused for writes and sparse queries (409,
# re-index it) instead of silently missing matches.
SPARSE = f"bm25-{TOKENIZER}"
# The sparse vector name of each tokenizer a collection may have been indexed with.
SPARSE_TOKENIZERS = {SPARSE: TOKENIZER, "bm25": LEGACY_TOKENIZER}
DISTANCE = "Cosine"
SPARSE_MODIFIER = "idf"
# The version a chunk belongs to, and the payload key of the one point per document (no
# vectors) that names the document's current version: Qdrant switches a document to its new
# version by writing that point (see stores/qdrant.py).
VERSION_KEY = "version_id"
CURRENT_VERSION_KEY = "current_version_id"
# The head point's payload key (Qdrant) that keeps the document's text as ingested, next to
# its metadata and hashes: written with the version, in the same single-point write that makes
# it current, so a document's original and its chunks are always of one version.
ORIGINAL_KEY = "original_text"
# Set (true) next to it, so that a write can tell whether the original is kept without
# reading the text.
ORIGINAL_KEPT_KEY = "original_kept"
# The collection's metadata key (pgvector: a column of its registry row) that records the
# chunker its chunks were cut with (rag_pipeline.chunking.ChunkerConfig.as_dict()).
CHUNKER_KEY = "rag_chunker"
# Filters on these run on every ingest and listing; embedded Qdrant keeps no payload indexes.
PAYLOAD_INDEXES: dict[str, str] = {
    "document_id": "keyword",
    "content_hash": "keyword",
    CURRENT_VERSION_KEY: "keyword",
}


def collection_layout(dimension: int, *, server: bool) -> dict[str, Any]:
    """The collection layout for an embedder of ``dimension``, in qdrant_collection's format.

    ``server``: the store is a Qdrant server (or PostgreSQL), which gets the payload indexes;
    embedded Qdrant ignores them, so they are left out.
    """
    layout: dict[str, Any] = {
        "vectors": {DENSE: {"size": dimension, "distance": DISTANCE}},
        "sparse_vectors": {SPARSE: {"modifier": SPARSE_MODIFIER}},
    }
    if server:
        layout["payload_indexes"] = dict(PAYLOAD_INDEXES)
    return layout


def is_server(settings: Settings) -> bool:
    """Whether the configured store keeps payload indexes (a Qdrant server or pgvector)."""
    return settings.vector_store == "pgvector" or bool(settings.qdrant_url)


def describe_layout(
    settings: Settings, dimension: int, chunker: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What ``GET /collection-layout`` answers: the embedder, the store, the layout, and the
    chunker that new collections record (``chunker``)."""
    described = {
        "embedding_backend": settings.embedding_backend,
        "embedding_model": settings.model_name,
        "dimension": dimension,
        "vector_store": settings.vector_store,
        "sparse_tokenizer": TOKENIZER,
        **collection_layout(dimension, server=is_server(settings)),
    }
    if chunker is not None:
        described["chunker"] = chunker
    return described
