"""Request and response models (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CollectionName = str
COLLECTION_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
DOCUMENT_ID_PATTERN = r"^[^\x00-\x1f]{1,256}$"


class DocumentIn(BaseModel):
    """One document to ingest. ``document_id`` defaults to the SHA-256 of the text."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., min_length=1, description="Document text (must contain a word)")
    document_id: str | None = Field(None, pattern=DOCUMENT_ID_PATTERN)
    metadata: dict[str, Any] = Field(default_factory=dict)


class IngestRequest(DocumentIn):
    collection: str | None = Field(None, pattern=COLLECTION_PATTERN)


class BatchIngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(..., min_length=1)
    collection: str | None = Field(None, pattern=COLLECTION_PATTERN)


IngestStatus = Literal["created", "updated", "unchanged"]


class IngestResponse(BaseModel):
    collection_name: str
    document_id: str
    content_hash: str = Field(
        description="SHA-256 of this version: the text, plus the metadata as canonical JSON"
    )
    status: IngestStatus
    chunks_created: int
    latency_ms: dict[str, float] = Field(default_factory=dict)


class BatchIngestResponse(BaseModel):
    collection_name: str
    results: list[IngestResponse]
    documents: int
    created: int
    updated: int
    unchanged: int
    chunks_created: int
    latency_ms: dict[str, float] = Field(default_factory=dict)


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(..., min_length=1)
    collection: str | None = Field(None, pattern=COLLECTION_PATTERN)
    top_k: int = Field(10, ge=1, le=1000, description="Candidates retrieved")
    top_n: int = Field(3, ge=1, le=1000, description="Sources kept after re-ranking")
    generate: bool = True
    stream: bool = Field(False, description="Answer as server-sent events")
    strategy: Literal["dense", "sparse", "hybrid", "legacy"] | None = Field(
        None, description="Override EMBEDDING_STRATEGY for this query"
    )
    reranker: Literal["none", "overlap", "remote"] | None = Field(
        None, description="Override RERANKER for this query"
    )


class Source(BaseModel):
    document_id: str
    chunk_index: int
    text: str
    score: float
    rerank_score: float
    metadata: dict[str, Any] = Field(default_factory=dict)


class QueryResponse(BaseModel):
    answer: str
    answer_mode: Literal["generated", "extractive", "none"]
    sources: list[Source]
    collection_name: str
    generation_error: str | None = None
    fallback_reason: Literal["no_llm", "llm_error", "deadline", "empty_answer"] | None = Field(
        None,
        description="Why answer_mode is extractive: no LLM configured, the LLM failed, it "
        "missed LLM_TIMEOUT_S, or it answered nothing",
    )
    latency_ms: dict[str, float]


class DocumentSummary(BaseModel):
    document_id: str
    content_hash: str = Field(description="SHA-256 of the stored version (text and metadata)")
    text_hash: str | None = Field(
        None,
        description="SHA-256 (hex) of the document's UTF-8 text alone: a client compares it, "
        "and the metadata, with its own document to know whether sending it would change "
        "anything. null for documents written before rag_pipeline 0.3.0; ingesting such a "
        "document again re-writes it once (status updated), after which text_hash is set.",
    )
    chunks: int
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentList(BaseModel):
    collection: str
    documents: list[DocumentSummary]


class DeleteResponse(BaseModel):
    collection_name: str
    document_id: str
    deleted_chunks: int


class CollectionInfo(BaseModel):
    name: str
    chunks: int


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


class CollectionCreated(BaseModel):
    name: str
    created: bool


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


class DenseVectorLayout(BaseModel):
    size: int = Field(description="Dimension of the embedding model")
    distance: Literal["Cosine"]


class SparseVectorLayout(BaseModel):
    modifier: Literal["idf"] = Field(description="IDF computed by the store at query time")


class CollectionLayout(BaseModel):
    """The layout of a collection this service can use, for its configured embedder and
    store. ``vectors``, ``sparse_vectors`` and ``payload_indexes`` are in the format of the
    aistack.platform.qdrant_collection module's options of the same names, so a playbook can
    create the collection before the service (or the document_ingest module) first writes to
    it. ``payload_indexes`` is absent for embedded Qdrant, which keeps none."""

    embedding_backend: Literal["openai", "local"]
    embedding_model: str = Field(description="EMBEDDING_MODEL, or the local model's folder")
    dimension: int = Field(description="Dense vector size the embedding model produces")
    vector_store: Literal["qdrant", "pgvector"]
    vectors: dict[str, DenseVectorLayout]
    sparse_vectors: dict[str, SparseVectorLayout]
    payload_indexes: dict[str, Literal["keyword"]] | None = Field(
        None, description="Payload field -> index type (Qdrant server and pgvector only)"
    )


class ErrorResponse(BaseModel):
    detail: str
