"""Request and response models (the OpenAPI schema is generated from these)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from rag_pipeline.settings import METADATA_DEPTH_CAP, Settings

COLLECTION_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
DOCUMENT_ID_PATTERN = r"^[^\x00-\x1f]{1,256}$"

# -- input hygiene ----------------------------------------------------------------------------
# Every string and number a request carries must be storable by every store: PostgreSQL text
# and jsonb cannot hold NUL, no store can encode a lone surrogate (JSON "\ud800" parses into
# one), and JSON has no NaN/Infinity (Qdrant turns them into null, jsonb refuses them).


def string_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored (a sentence without the value itself), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"contains a lone surrogate U+{ord(value[exc.start]):04X} at index {exc.start}; "
            "strings must be valid Unicode"
        )
    nul = value.find("\x00")
    if nul >= 0:
        return f"contains a NUL character (U+0000) at index {nul}, which the stores cannot keep"
    return None


def _clean_string(value: object) -> object:
    # Runs before pydantic's own str check, whose error for a surrogate says less.
    if isinstance(value, str) and (problem := string_problem(value)):
        raise PydanticCustomError("invalid_string", "String {problem}", {"problem": problem})
    return value


CleanStr = Annotated[str, BeforeValidator(_clean_string)]
"""A string without NUL characters or lone surrogates (422 naming the field otherwise)."""


@dataclass(frozen=True)
class MetadataShape:
    depth: int  # levels of objects and arrays; the metadata object itself is level 1
    keys: int  # keys of all objects at every level


def _key_path(parent: str, key: object) -> str:
    # json.dumps with ensure_ascii escapes what cannot be printed (NUL, surrogates).
    return f"{parent}[{json.dumps(key, ensure_ascii=True)[:80]}]"


def metadata_shape(metadata: object, field: str = "metadata") -> MetadataShape:
    """Check that ``metadata`` is a JSON object storable by every store, and measure it.

    Walks iteratively (no recursion limit) and stops below METADATA_DEPTH_CAP levels. Raises
    ValueError naming the path of the first offending key or value.
    """
    if not isinstance(metadata, dict):
        raise ValueError(f"{field} must be a JSON object")
    depth = keys = 0
    stack: list[tuple[str, object, int]] = [(field, metadata, 1)]
    while stack:
        path, value, level = stack.pop()
        if isinstance(value, dict | list | tuple):
            if level > METADATA_DEPTH_CAP:
                raise ValueError(f"{field} is nested more than {METADATA_DEPTH_CAP} levels deep")
            depth = max(depth, level)
            if isinstance(value, dict):
                keys += len(value)
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise ValueError(f"{_key_path(path, key)}: keys must be strings")
                    if problem := string_problem(key):
                        raise ValueError(f"{_key_path(path, key)}: the key {problem}")
                    stack.append((_key_path(path, key), item, level + 1))
            else:
                stack.extend((f"{path}[{i}]", item, level + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            if problem := string_problem(value):
                raise ValueError(f"{path}: the string {problem}")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{path}: {value} is not a JSON number (numbers must be finite)")
        elif not (value is None or isinstance(value, bool | int)):
            raise ValueError(f"{path}: a {type(value).__name__} is not a JSON value")
    return MetadataShape(depth, keys)


def metadata_bytes(metadata: dict[str, Any]) -> int:
    """Size of the metadata as compact UTF-8 JSON (what MAX_METADATA_BYTES bounds)."""
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _valid_metadata(value: object) -> object:
    if isinstance(value, dict):  # anything else gets pydantic's own type error
        try:
            metadata_shape(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "invalid_metadata", "{problem}", {"problem": str(exc)}
            ) from None
    return value


def _limit(name: str) -> int:
    return int(Settings.model_fields[name].default)


Metadata = Annotated[
    dict[str, Any],
    BeforeValidator(_valid_metadata),
    Field(
        default_factory=dict,
        description=(
            "JSON object stored with every chunk of the document. Strings without NUL or lone "
            "surrogates, numbers finite (else 422). At most MAX_METADATA_BYTES "
            f"(default {_limit('max_metadata_bytes')}) bytes as compact UTF-8 JSON and "
            f"MAX_METADATA_KEYS (default {_limit('max_metadata_keys')}) keys in all its "
            "objects (else 413), nested at most MAX_METADATA_DEPTH "
            f"(default {_limit('max_metadata_depth')}, at most {METADATA_DEPTH_CAP}) levels "
            "(else 422)."
        ),
    ),
]
# Constraints before the validator, so that the schema shows the pattern and the validator
# still runs first.
CollectionName = Annotated[str, Field(pattern=COLLECTION_PATTERN), BeforeValidator(_clean_string)]
DocumentId = Annotated[str, Field(pattern=DOCUMENT_ID_PATTERN), BeforeValidator(_clean_string)]
CollectionField = Annotated[
    CollectionName | None,
    Field(
        None,
        description="Collection (default COLLECTION_NAME): 1 to 64 letters, digits, '_' or '-'",
    ),
]


class DocumentIn(BaseModel):
    """One document to ingest. ``document_id`` defaults to the SHA-256 of the text."""

    model_config = ConfigDict(extra="forbid")

    text: CleanStr = Field(
        ...,
        min_length=1,
        description="Document text: must contain a word; no NUL characters or lone surrogates "
        f"(422); at most MAX_DOCUMENT_CHARS (default {_limit('max_document_chars')}) "
        "characters (413)",
    )
    document_id: DocumentId | None = Field(
        None,
        description="1 to 256 characters, no control characters (default: SHA-256 of the text)",
    )
    metadata: Metadata


class IngestRequest(DocumentIn):
    collection: CollectionField


class BatchIngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(..., min_length=1)
    collection: CollectionField


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

    query: CleanStr = Field(
        ...,
        min_length=1,
        description="The question: no NUL characters or lone surrogates (422); at most "
        f"MAX_QUERY_CHARS (default {_limit('max_query_chars')}) characters (413)",
    )
    collection: CollectionField
    top_k: int = Field(10, ge=1, le=1000, description="Candidates retrieved")
    top_n: int = Field(3, ge=1, le=1000, description="Sources kept after re-ranking")
    generate: bool = True
    stream: bool = Field(False, description="Answer as server-sent events")
    strategy: Literal["dense", "sparse", "hybrid"] | None = Field(
        None, description="Override EMBEDDING_STRATEGY for this query"
    )
    reranker: Literal["none", "overlap", "remote"] | None = Field(
        None, description="Override RERANKER for this query"
    )
    neighbours: int | None = Field(
        None,
        ge=0,
        le=10,
        description="Chunks on each side of every source's best chunk returned as its "
        "`context` (and given to the LLM); default CONTEXT_NEIGHBOURS",
    )


class Source(BaseModel):
    document_id: str
    chunk_index: int
    text: str
    score: float
    rerank_score: float
    metadata: dict[str, Any] = Field(default_factory=dict)
    context: str | None = Field(
        None,
        description="The best chunk with its neighbouring chunks (overlaps not repeated), "
        "when the query asked for `neighbours`",
    )


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
    sparse_tokenizer: str = Field(
        description="The BM25 tokenizer (and version) that fills the sparse vector; its name "
        "is part of the sparse vector's name"
    )
    vectors: dict[str, DenseVectorLayout]
    sparse_vectors: dict[str, SparseVectorLayout]
    payload_indexes: dict[str, Literal["keyword"]] | None = Field(
        None, description="Payload field -> index type (Qdrant server and pgvector only)"
    )


class ErrorResponse(BaseModel):
    detail: str
