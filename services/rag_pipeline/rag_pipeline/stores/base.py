"""The store interface the pipeline relies on."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
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


def tokenizer_mismatch(
    name: str, tokenizer: str, layout: dict[str, Any]
) -> CollectionMismatchError:
    """The error for collection ``name`` indexed with another BM25 tokenizer than ours."""
    from rag_pipeline.sparse import LEGACY_TOKENIZER, TOKENIZER

    since = " (rag_pipeline 0.2.0 and earlier)" if tokenizer == LEGACY_TOKENIZER else ""
    return CollectionMismatchError(
        f"collection {name!r} was indexed with the BM25 tokenizer {tokenizer}{since}, but this "
        f"service tokenizes with {TOKENIZER}: its sparse terms would not match new documents "
        "or queries. Re-index it: delete the collection and ingest its documents again (or "
        "ingest them into a new collection). Until then dense queries (strategy: dense), "
        "listing and deleting documents still work.",
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
    version_id: str | None = None  # None: written before rag_pipeline 0.3.0


@dataclass
class StoredDocument:
    """What a store holds of one document when a write starts.

    ``chunks``: how many chunks queries see (0: the document is not visible, e.g. only an
    uncommitted version is stored). ``complete``: the visible chunks are one whole version
    (content_hash, text_hash and chunks_total agree, and all chunks are there).
    ``replaced_ids``: the chunks a new version replaces (the visible ones and leftovers the
    store knows to be dead); the store deletes them once the new version is current.
    """

    document_id: str
    content_hash: str | None
    text_hash: str | None
    chunks_total: int
    chunks: int
    complete: bool
    replaced_ids: list[str] = field(default_factory=list)
    # A versioned document (rag_pipeline 0.3.0 and 0.4.0) whose original is not kept: the
    # next ingestion of the same content writes it again, original included, so that the
    # collection can be re-indexed (documents of 0.2.0 and earlier: never set).
    original_missing: bool = False


@dataclass
class DocumentVersion:
    """A new version of a document: every chunk, written so that it becomes visible in one
    step and replaces ``previous`` (as read under the pipeline's per-document lock)."""

    document_id: str
    version_id: str
    content_hash: str
    text_hash: str
    metadata: dict[str, Any]
    points: list[ChunkPoint]
    previous: StoredDocument | None = None
    # The document's text as ingested, kept with the version (written in the same step) so
    # that the collection can be re-indexed without a re-upload.
    text: str | None = None


@dataclass
class Original:
    """A document's current version as it was ingested (what a re-index re-chunks)."""

    document_id: str
    version_id: str
    content_hash: str
    text_hash: str
    metadata: dict[str, Any]
    text: str


# Physical collections built by a re-index are named ``<name>.r<hex>``: '.' is not allowed in
# collection names (models.COLLECTION_PATTERN), so they never clash with one, and listings
# hide them (a finished build is reached through its logical name).
STAGING_MARK = ".r"


def staging_name(name: str) -> str:
    import uuid

    return f"{name}{STAGING_MARK}{uuid.uuid4().hex[:12]}"


def is_staging(physical: str) -> bool:
    return "." in physical


def summarise(document_id: str, chunks: list[ExistingChunk]) -> StoredDocument:
    """The StoredDocument of ``chunks``, all of them visible (legacy chunks, or pgvector where
    a transaction replaces a document at once)."""
    first = chunks[0] if chunks else None
    complete = first is not None and all(
        c.content_hash == first.content_hash
        and c.text_hash == first.text_hash
        and c.chunks_total == first.chunks_total
        and c.version_id == first.version_id
        for c in chunks
    )
    complete = complete and first is not None and len(chunks) == first.chunks_total
    return StoredDocument(
        document_id,
        first.content_hash if first else None,
        first.text_hash if first else None,
        first.chunks_total if first else 0,
        len(chunks),
        complete,
        [c.id for c in chunks],
    )


@dataclass
class DocumentInfo:
    document_id: str
    content_hash: str
    chunks: int
    metadata: dict[str, Any] = field(default_factory=dict)
    text_hash: str | None = None  # None when any chunk was written before rag_pipeline 0.3.0


class VectorStore(ABC):
    """Chunks with a named dense vector, a BM25 sparse vector and a payload.

    Payload keys used by the pipeline: document_id, version_id, content_hash, text_hash,
    chunk_index, chunks_total, text, metadata. Queries and listings see only the current
    version of each document (chunks without version_id: a document written by
    rag_pipeline 0.2.0 or earlier, current until its next write).
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
    def ensure_collection(
        self, name: str, dimension: int, chunker: dict[str, Any] | None = None
    ) -> bool:
        """Create the collection if missing (recording ``chunker``), else check it; return
        True when it was created."""

    @abstractmethod
    def list_collections(self) -> list[tuple[str, int]]:
        """(name, number of chunks) for every collection."""

    @abstractmethod
    def delete_collection(self, name: str) -> bool: ...

    @abstractmethod
    def stored_documents(self, name: str, document_ids: list[str]) -> dict[str, StoredDocument]:
        """What the store holds of each of ``document_ids`` (absent: nothing at all).

        Called with the documents' keys held in the pipeline's per-document lock, so nothing
        else in this process writes them until ``write_versions`` returns."""

    @abstractmethod
    def write_versions(self, name: str, versions: list[DocumentVersion], batch_size: int) -> None:
        """Store each version so that it replaces the document's previous one in one step:
        queries, listings and a crash at any point see either the whole old version or the
        whole new one, never a mix or a part. ``batch_size``: points per store call."""

    @abstractmethod
    def delete_document(self, name: str, document_id: str) -> int:
        """Delete the document in one step; return how many visible chunks it had."""

    @abstractmethod
    def search_dense(self, name: str, vector: list[float], limit: int) -> list[Hit]: ...

    @abstractmethod
    def search_sparse(self, name: str, vector: SparseVector, limit: int) -> list[Hit]: ...

    @abstractmethod
    def list_documents(self, name: str) -> list[DocumentInfo]: ...

    # -- the chunker a collection was made with (rag_pipeline.chunking.ChunkerConfig) -------

    @abstractmethod
    def get_chunker(self, name: str) -> dict[str, Any] | None:
        """The chunker recorded with the collection; None: none recorded (a collection made
        by rag_pipeline 0.3.0 or earlier, or by the qdrant_collection module)."""

    @abstractmethod
    def set_chunker(self, name: str, chunker: dict[str, Any]) -> None:
        """Record the chunker with the collection."""

    @abstractmethod
    def has_chunks(self, name: str) -> bool:
        """Whether the collection holds any chunk (visible or not)."""

    @abstractmethod
    def chunk_range(
        self, name: str, document_id: str, version_id: str | None, first: int, last: int
    ) -> list[dict[str, Any]]:
        """Payloads of the chunks ``first``..``last`` (chunk_index) of one version of a
        document (``version_id`` None: its chunks written before 0.3.0), in chunk order."""

    # -- originals and re-index (a logical collection name -> one physical collection) ------
    #
    # A collection name is logical: it names one physical collection, itself until the first
    # re-index, afterwards the build that re-index switched to (Qdrant: a collection alias;
    # pgvector: the registry row's ``physical`` column). Every store operation resolves the
    # name in one place (physical_name / the registry lookup), so callers only ever use the
    # logical name; a build in progress is addressed by its own (staging) name.

    @abstractmethod
    def physical_name(self, name: str) -> str:
        """The physical collection that ``name`` names now."""

    @abstractmethod
    def missing_originals(self, name: str) -> list[str]:
        """Ids of the visible documents whose original text is not kept (written before
        rag_pipeline 0.5.0)."""

    @abstractmethod
    def originals(
        self, name: str, document_ids: list[str] | None = None, page: int = 64
    ) -> Iterator[list[Original]]:
        """The originals of the current versions (all, or of ``document_ids``), ``page`` at a
        time, in document_id order."""

    @abstractmethod
    def create_staging(self, name: str, dimension: int, chunker: dict[str, Any]) -> str:
        """A new empty physical collection for re-indexing ``name``, with the current layout
        and ``chunker``; its name (store operations accept it as a collection name)."""

    @abstractmethod
    def switch(self, name: str, staging: str) -> None:
        """Make ``name`` name ``staging`` in one step, then drop the physical collection it
        named before."""

    @abstractmethod
    def drop_staging(self, staging: str) -> None:
        """Drop a build that will not be switched to (nothing if it is gone)."""

    def lock_reindex(self, name: str) -> Callable[[], None] | None:
        """Take the store-wide right to re-index ``name``: a function that gives it back, or
        None while another process holds it. Default: nothing to take (the pipeline's own
        registry refuses a second job in this process)."""
        return lambda: None

    @abstractmethod
    def leftover_staging(self, name: str) -> list[str]:
        """Builds of ``name`` that nothing names (a re-index that died with its process)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
