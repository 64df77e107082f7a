"""The RAG pipeline: ingest (validate, chunk, embed, upsert) and query (embed, search, re-rank,
generate). Used by the HTTP service and in process (the Ansible ingestion module)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any, Literal, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace

from rag_pipeline.chunking import (
    Chunk,
    ChunkerConfig,
    ChunkingConfigError,
    TokenCounter,
    chunk_document,
    chunker_config,
    merge_context,
)
from rag_pipeline.documents import content_hash, new_version_id, point_id, text_hash
from rag_pipeline.embeddings import Embedder, EmbedderError, make_embedder
from rag_pipeline.generation import (
    FallbackReason,
    GenerationError,
    Generator,
    extractive_answer,
)
from rag_pipeline.layout import VERSION_KEY, describe_layout
from rag_pipeline.locking import collection_gate, document_locks
from rag_pipeline.metrics import Metrics
from rag_pipeline.models import (
    BatchIngestResponse,
    DocumentIn,
    DocumentSummary,
    IngestResponse,
    QueryRequest,
    QueryResponse,
    Source,
)
from rag_pipeline.reindex import JobRegistry, ReindexConflictError, ReindexJob
from rag_pipeline.rerank import RerankError, no_rerank, overlap_rerank, remote_rerank
from rag_pipeline.retrieval import Candidate, from_hits, fuse
from rag_pipeline.settings import Settings
from rag_pipeline.sparse import BM25Encoder, SparseVector
from rag_pipeline.stores import (
    ChunkPoint,
    CollectionNotFoundError,
    DocumentVersion,
    StoredDocument,
    StoreUnavailableError,
    VectorStore,
    make_store,
)
from rag_pipeline.stores.base import Hit, Original

log = logging.getLogger("rag_pipeline.pipeline")


class InvalidInputError(ValueError):
    """Input passed model validation but cannot be processed (maps to HTTP 422)."""


class Timer:
    """Collects per-stage wall time in milliseconds; each stage is also a span (``rag.<stage>``,
    a child of the current span: the request's, when tracing is on)."""

    def __init__(self, tracer: trace.Tracer | None = None) -> None:
        self.start = time.perf_counter()
        self.stages: dict[str, float] = {}
        self.tracer = tracer or trace.get_tracer("rag_pipeline")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            with self.tracer.start_as_current_span(f"rag.{name}"):
                yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + (time.perf_counter() - t0) * 1000

    def done(self) -> dict[str, float]:
        self.stages["total"] = (time.perf_counter() - self.start) * 1000
        return {k: round(v, 3) for k, v in self.stages.items()}


# A server-sent event's fields, framed by the response (sse-starlette's EventSourceResponse).
SSE = dict[str, str]


def _sse(event: str, data: Any) -> SSE:
    return {"event": event, "data": json.dumps(data)}


def embed_text(payload: dict[str, Any]) -> str:
    """The text a chunk is embedded and BM25-indexed as: its title/heading path, then its text."""
    title, text = payload.get("title"), str(payload.get("text", ""))
    return f"{title}\n{text}" if title else text


def document_text(version: DocumentVersion) -> str:
    """What a document is BM25-indexed as: its title, then its whole text (the chunks joined
    without their overlaps when the original is not at hand)."""
    text = version.text
    if text is None:
        text = merge_context([p.payload for p in version.points])
    title = _title(version.metadata)
    return f"{title}\n{text}" if title else text


def _title(metadata: dict[str, Any]) -> str | None:
    title = metadata.get("title")
    return title if isinstance(title, str) and title.strip() else None


def best_per_document(hits: list[Hit]) -> list[Hit]:
    """Each document's best chunk, best first (a document ranks by its best chunk: MaxP)."""
    best: dict[str, Hit] = {}
    for hit in hits:
        doc = str(hit.payload.get("document_id", hit.id))
        if doc not in best or hit.score > best[doc].score:
            best[doc] = hit
    # Keyed by document, so that fusion adds a document's dense and sparse evidence even
    # when its best chunks differ.
    ranked = sorted(best.items(), key=lambda item: item[1].score, reverse=True)
    return [Hit(f"doc\x00{doc}", h.score, h.payload) for doc, h in ranked]


class _Answer(NamedTuple):
    answer: str
    mode: Literal["generated", "extractive", "none"]
    error: str | None
    reason: FallbackReason | None


class Pipeline:
    """One store, one embedder, optional LLM. Thread-safe for concurrent requests."""

    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        embedder: Embedder | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._embedder = embedder
        self.metrics = metrics or Metrics()
        self.bm25 = BM25Encoder(settings.bm25_k1, settings.bm25_b, settings.bm25_avgdl)
        # Stage spans (create_app sets the app's tracer; a no-op without tracing).
        self.tracer: trace.Tracer = trace.get_tracer("rag_pipeline")
        self._generator: Generator | None = None
        # One loader at a time for the lazy components (two first requests, or /ready's
        # background load and a query, must not build two).
        self._components_lock = threading.Lock()
        self._embedder_loading: threading.Thread | None = None
        self._embedder_error: str | None = None
        self._ready_lock = threading.Lock()
        self._ready_cache: tuple[float, bool, dict[str, str]] | None = None
        self._ping: threading.Thread | None = None
        self._ping_result: tuple[float, str | None] | None = None  # (when, error or None)
        self._ping_started = self._ping_ok_at = float("-inf")
        self._chunker: tuple[TokenCounter, ChunkerConfig] | None = None
        self.reindex_jobs = JobRegistry()

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> Pipeline:
        settings = settings or Settings()
        return cls(settings, make_store(settings), **kwargs)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()
        if self._generator is not None:
            self._generator.close()

    # -- components -----------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        # Lazy: a process that only lists or deletes documents never loads the model.
        if self._embedder is None:
            with self._components_lock:
                if self._embedder is None:
                    self._embedder = make_embedder(self.settings)
        return self._embedder

    @property
    def generator(self) -> Generator | None:
        if self._generator is None and self.settings.effective_llm_url:
            with self._components_lock:
                if self._generator is None:
                    self._generator = Generator(self.settings)
        return self._generator

    def _collection(self, name: str | None) -> str:
        return name or self.settings.collection_name

    def chunker(self) -> tuple[TokenCounter, ChunkerConfig]:
        """The embedder's tokenizer and the chunker of the settings (loads the embedder);
        ChunkingConfigError when the settings would make chunks the embedder truncates."""
        if self._chunker is None:
            counter = self.embedder.token_counter()
            config = chunker_config(counter, self.settings.chunk_size, self.settings.chunk_overlap)
            self._chunker = (counter, config)
        return self._chunker

    def ensure_collection(self, collection: str | None = None) -> bool:
        """Create the collection (dense size from the embedder, cosine, BM25 sparse with IDF,
        the chunker recorded); an existing one must have been made with the same chunker."""
        name = self._collection(collection)
        chunker = self.chunker()[1].as_dict()
        # Asked of the store every time (one cheap call): the collection may have been dropped
        # behind our back, e.g. by the qdrant_collection module.
        if self.store.ensure_collection(name, self.embedder.dimension, chunker):
            return True
        self._check_chunker(name, chunker)
        return False

    def _check_chunker(self, name: str, chunker: dict[str, Any]) -> None:
        recorded = self.store.get_chunker(name)
        if recorded == chunker:
            return
        if recorded is None:
            # Made by the qdrant_collection module (or 0.3.0) and still empty: adopt it.
            if not self.store.has_chunks(name):
                self.store.set_chunker(name, chunker)
                return
            raise ChunkingConfigError(
                f"collection {name!r} was filled by rag_pipeline 0.3.0 or earlier, whose "
                "chunks (CHUNK_SIZE words) the embedder truncates, and records no chunker; "
                "queries still work, but ingesting into it would mix two chunkers. Re-index "
                f"it (POST /collections/{name}/reindex; needs the originals, kept since "
                "rag_pipeline 0.5.0), or create a new collection (or delete this one) and "
                f"ingest again; the chunker is {json.dumps(chunker)}"
            )
        raise ChunkingConfigError(
            f"collection {name!r} was chunked with {json.dumps(recorded)}, but the settings "
            f"(CHUNK_SIZE, CHUNK_OVERLAP, the embedder's tokenizer) now give "
            f"{json.dumps(chunker)}; re-index it with the new settings (POST "
            f"/collections/{name}/reindex), ingest with the collection's settings, or ingest "
            "into a new collection"
        )

    def check_collection(self, collection: str | None = None) -> bool:
        """Whether the collection exists (loads the embedder); raise CollectionMismatchError
        when it exists with another layout than the embedder needs."""
        name = self._collection(collection)
        return self.store.check_collection(name, self.embedder.dimension)

    def layout(self) -> dict[str, Any]:
        """The collection layout for the configured embedder and store (loads the embedder)."""
        return describe_layout(self.settings, self.embedder.dimension, self.chunker()[1].as_dict())

    def _require_collection(self, name: str) -> None:
        if not self.store.collection_exists(name):
            raise CollectionNotFoundError(f"collection {name!r} not found")

    def ready(self) -> dict[str, str]:
        """Check store and embedder; raise StoreUnavailableError / EmbedderError on failure."""
        self.store.ping()
        self.embedder.check()
        return {"store": f"ok ({self.store.kind})", "embedder": f"ok ({self.embedder.name})"}

    # -- readiness (GET /ready) -----------------------------------------------------------

    def _load_embedder(self) -> None:
        try:
            _ = self.embedder
            self._embedder_error = None
        except Exception as exc:  # reported by /ready; the next probe tries again
            log.exception("loading the embedder failed")
            self._embedder_error = f"loading failed: {exc}"

    def _embedder_status(self, wait_s: float) -> tuple[bool, str]:
        """Never embeds. Not loaded yet: start loading in the background (a model load takes
        longer than a probe may) and wait up to ``wait_s`` for it."""
        if self._embedder is None:
            with self._ready_lock:
                loading = self._embedder_loading
                if loading is None or not loading.is_alive():
                    loading = threading.Thread(
                        target=self._load_embedder, name="embedder-load", daemon=True
                    )
                    self._embedder_loading = loading
                    loading.start()
            loading.join(wait_s)
            if self._embedder is None:
                return False, self._embedder_error or "loading"
        embedder = self.embedder
        try:
            embedder.check()
        except EmbedderError as exc:
            return False, str(exc)
        return True, f"ok ({embedder.name})"

    def _run_ping(self) -> None:
        try:
            self.store.ping()
            error = None
            self._ping_ok_at = time.monotonic()
        except Exception as exc:  # StoreUnavailableError, or anything else: not ready
            error = str(exc) if isinstance(exc, StoreUnavailableError) else repr(exc)
        self._ping_result = (time.monotonic(), error)

    def _store_status(self, wait_s: float) -> tuple[bool, str]:
        """One ping in flight at a time, waited for at most ``wait_s``. A ping still running
        then (embedded Qdrant holds its lock through an upsert batch) counts as reachable
        when the store answered within the last 30 s."""
        with self._ready_lock:
            ping = self._ping
            if ping is None or not ping.is_alive():  # else join the ping in flight
                ping = self._ping = threading.Thread(
                    target=self._run_ping, name="store-ping", daemon=True
                )
                self._ping_started = time.monotonic()
                ping.start()
            started = self._ping_started
        ping.join(wait_s)
        result = self._ping_result
        if result is not None and result[0] >= started:
            return (True, f"ok ({self.store.kind})") if result[1] is None else (False, result[1])
        if time.monotonic() - self._ping_ok_at < 30:
            return True, f"ok ({self.store.kind}, busy)"
        return False, f"{self.store.kind} did not answer a ping within {wait_s:g} s"

    def readiness(self, load_wait_s: float = 1.0) -> tuple[bool, dict[str, str]]:
        """Cheap checks for /ready: the store answers a ping and the embedder is loaded (a
        remote one answers GET /models). No embedding, so probes never compete with queries
        for the model; the result is reused for READY_CACHE_S."""
        cached = self._ready_cache
        if cached is not None and time.monotonic() - cached[0] < self.settings.ready_cache_s:
            return cached[1], cached[2]
        checks: dict[str, str] = {}
        ok, checks["store"] = self._store_status(self.settings.ready_wait_s)
        embedder_ok, checks["embedder"] = self._embedder_status(load_wait_s)
        ok = ok and embedder_ok
        self._ready_cache = (time.monotonic(), ok, checks)
        return ok, checks

    # -- ingestion ------------------------------------------------------------------------

    def ingest(self, document: DocumentIn, collection: str | None = None) -> IngestResponse:
        batch = self.ingest_batch([document], collection)
        result = batch.results[0]
        result.latency_ms = batch.latency_ms
        return result

    def ingest_batch(
        self, documents: list[DocumentIn], collection: str | None = None
    ) -> BatchIngestResponse:
        """Idempotent ingestion, one embedding call for the whole batch. Each document's new
        version replaces the old one in one step (queries never see a mix or a part, even
        across a crash), and writers of one document take turns: the last one wins."""
        name = self._collection(collection)
        timer = Timer(self.tracer)
        s = self.settings
        counter, chunker = self.chunker()
        with timer.stage("chunk"):
            prepared: list[tuple[str, str, str, DocumentIn, list[Chunk]]] = []
            seen: set[str] = set()
            for i, doc in enumerate(documents):
                chunks = chunk_document(doc.text, counter, chunker, _title(doc.metadata))
                if not chunks:
                    raise InvalidInputError(f"document {i}: text has no words")
                digest = content_hash(doc.text, doc.metadata)
                text_digest = text_hash(doc.text)
                doc_id = doc.document_id or text_digest
                if doc_id in seen:
                    raise InvalidInputError(f"document {i}: duplicate document_id {doc_id!r}")
                seen.add(doc_id)
                prepared.append((doc_id, digest, text_digest, doc, chunks))
        # From reading what is stored to the new versions being current: another writer of
        # these documents in this process waits (other processes: see the stores); a
        # re-index's switch waits for the write, or the write for the switch.
        with collection_gate.shared(name), document_locks.hold((name, p[0]) for p in prepared):
            results, versions = self._plan_versions(name, prepared, timer)
            if versions:
                self._embed_versions(versions, timer)
                with timer.stage("upsert"):
                    self.store.write_versions(name, versions, s.upsert_batch_size)
        latency = timer.done()
        self.metrics.observe_stages("ingest", latency)
        for r in results:
            self.metrics.documents.labels(r.status).inc()
        self.metrics.chunks.inc(sum(r.chunks_created for r in results))
        return BatchIngestResponse(
            collection_name=name,
            results=results,
            documents=len(results),
            created=sum(r.status == "created" for r in results),
            updated=sum(r.status == "updated" for r in results),
            unchanged=sum(r.status == "unchanged" for r in results),
            chunks_created=sum(r.chunks_created for r in results),
            latency_ms=latency,
        )

    def _plan_versions(
        self,
        name: str,
        prepared: list[tuple[str, str, str, DocumentIn, list[Chunk]]],
        timer: Timer,
    ) -> tuple[list[IngestResponse], list[DocumentVersion]]:
        """A result per document, and the new versions to write (chunk texts in the points'
        payloads; vectors still empty)."""
        with timer.stage("store"):
            self.ensure_collection(name)
            stored = self.store.stored_documents(name, [p[0] for p in prepared])
        results: list[IngestResponse] = []
        versions: list[DocumentVersion] = []
        for doc_id, digest, text_digest, doc, chunks in prepared:
            old = stored.get(doc_id)
            # A whole version of this content (a document stored before 0.3.0 has no
            # text_hash and is re-written once).
            unchanged = (
                old is not None
                and old.complete
                and not old.original_missing  # written again once, original kept
                and (old.content_hash, old.text_hash, old.chunks_total)
                == (digest, text_digest, len(chunks))
            )
            status = "unchanged" if unchanged else ("updated" if old and old.chunks else "created")
            results.append(
                IngestResponse(
                    collection_name=name,
                    document_id=doc_id,
                    content_hash=digest,
                    status=status,
                    chunks_created=0 if unchanged else len(chunks),
                )
            )
            if unchanged:
                continue
            original = Original(
                doc_id, new_version_id(), digest, text_digest, doc.metadata, doc.text
            )
            versions.append(self._version(original, chunks, old))
        return results, versions

    @staticmethod
    def _version(
        doc: Original, chunks: list[Chunk], previous: StoredDocument | None = None
    ) -> DocumentVersion:
        """The version of ``doc`` cut into ``chunks`` (vectors still empty), its text kept."""
        points = [
            ChunkPoint(
                point_id(doc.document_id, doc.version_id, idx),
                [],
                SparseVector([], []),
                {
                    "document_id": doc.document_id,
                    VERSION_KEY: doc.version_id,
                    "content_hash": doc.content_hash,
                    "text_hash": doc.text_hash,
                    "chunk_index": idx,
                    "chunks_total": len(chunks),
                    "text": chunk.text,
                    # Where the text is in the document (characters): neighbouring
                    # chunks are joined without repeating their overlap.
                    "start": chunk.start,
                    "end": chunk.end,
                    **({"title": chunk.prefix} if chunk.prefix else {}),
                    "metadata": doc.metadata,
                },
            )
            for idx, chunk in enumerate(chunks)
        ]
        return DocumentVersion(
            doc.document_id,
            doc.version_id,
            doc.content_hash,
            doc.text_hash,
            doc.metadata,
            points,
            previous,
            doc.text,
        )

    def _embed_versions(self, versions: list[DocumentVersion], timer: Timer) -> None:
        """Dense vectors per chunk; one BM25 vector per document, on its first chunk (BM25
        has no window: it scores the whole text, the dense model its best passage)."""
        points = [p for v in versions for p in v.points]
        texts = [embed_text(p.payload) for p in points]
        with timer.stage("embed"):
            dense = self.embedder.embed(texts)
        for point, vector in zip(points, dense, strict=True):
            point.dense = vector.tolist()
        with timer.stage("sparse"):
            for version in versions:
                if version.points:
                    version.points[0].sparse = self.bm25.encode_document(document_text(version))

    # -- documents ------------------------------------------------------------------------

    def list_documents(self, collection: str | None = None) -> list[DocumentSummary]:
        name = self._collection(collection)
        self._require_collection(name)
        return [
            DocumentSummary(
                document_id=d.document_id,
                content_hash=d.content_hash,
                text_hash=d.text_hash,
                chunks=d.chunks,
                metadata=d.metadata,
            )
            for d in self.store.list_documents(name)
        ]

    def delete_document(self, document_id: str, collection: str | None = None) -> int:
        """Delete the document in one step; the number of chunks it had (0: none)."""
        name = self._collection(collection)
        self._require_collection(name)
        with collection_gate.shared(name), document_locks.hold([(name, document_id)]):
            return self.store.delete_document(name, document_id)

    def list_collections(self) -> list[tuple[str, int]]:
        return self.store.list_collections()

    # -- re-index -------------------------------------------------------------------------
    #
    # The collection is rebuilt from its kept originals with the current embedder, chunker
    # and tokenizer into a new physical collection; queries keep using the old one meanwhile.
    # Writes keep going to the old one too: at the end, with this process's writers of the
    # collection held off, documents written or deleted since they were read are brought
    # over, and the name is switched to the build in one step (the store's switch); the old
    # physical collection is dropped. A failure at any point drops the build: the old
    # collection serves on, untouched. Versions keep their version_id, so a query that
    # straddles the switch sees one version of each document.

    def start_reindex(self, collection: str | None = None) -> ReindexJob:
        """Check that the collection can be re-indexed (404, 409) and start a job in a thread
        of its own; the job, as GET /collections/{name}/reindex shows it."""
        name = self._collection(collection)
        self._require_collection(name)
        chunker = self.chunker()[1].as_dict()  # ChunkingConfigError (409) before anything
        missing = self.store.missing_originals(name)
        if missing:
            shown = ", ".join(repr(d) for d in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise ReindexConflictError(
                f"collection {name!r} cannot be re-indexed: {len(missing)} document(s) "
                f"({shown}{more}) were ingested before rag_pipeline 0.5.0, which kept no "
                "originals. Ingest them again as they are (document_ingest or POST /ingest: a "
                "document whose original is missing is written again once, original kept) and "
                "re-index then; a collection that refuses ingestion (made by 0.3.0 or earlier) "
                "must be created anew (or deleted) and ingested into."
            )
        job = self.reindex_jobs.start(name)
        try:
            release = self.store.lock_reindex(name)
            if release is None:
                raise ReindexConflictError(
                    f"collection {name!r} is being re-indexed by another process of this "
                    "service (another replica); wait for it to finish"
                )
            job.chunker = chunker
            job.documents_total = len(self.store.list_documents(name))
        except Exception as exc:
            self.reindex_jobs.finish(job, "failed", str(exc))
            raise
        self.metrics.reindex_running.inc()
        threading.Thread(
            target=self._run_reindex, args=(job, release), name=f"reindex-{name}", daemon=True
        ).start()
        return job.model_copy()

    def _rebuild(self, target: str, originals: list[Original]) -> int:
        """Cut, embed and write ``originals`` into the physical collection ``target``."""
        counter, chunker = self.chunker()
        versions = []
        for doc in originals:
            chunks = chunk_document(doc.text, counter, chunker, _title(doc.metadata))
            versions.append(self._version(doc, chunks))
        timer = Timer(self.tracer)
        self._embed_versions(versions, timer)
        with timer.stage("upsert"):
            self.store.write_versions(target, versions, self.settings.upsert_batch_size)
        self.metrics.observe_stages("reindex", timer.done())
        return sum(len(v.points) for v in versions)

    def _run_reindex(self, job: ReindexJob, release: Callable[[], None]) -> None:
        name = job.collection
        staging: str | None = None
        started = time.perf_counter()
        try:
            for leftover in self.store.leftover_staging(name):  # a build that died with us
                log.warning("dropping %s, left by an earlier re-index of %s", leftover, name)
                self.store.drop_staging(leftover)
            staging = self.store.create_staging(name, self.embedder.dimension, job.chunker)
            log.info("re-index of %s started into %s", name, staging, extra={"job": job.job_id})
            done: dict[str, str] = {}  # document_id -> content_hash re-indexed
            for page in self.store.originals(name, page=self.settings.reindex_batch_documents):
                job.chunks_written += self._rebuild(staging, page)
                done |= {d.document_id: d.content_hash for d in page}
                job.documents_done = len(done)
                self.metrics.reindexed_documents.inc(len(page))
                log.info(
                    "re-index of %s: %d/%d documents",
                    name,
                    job.documents_done,
                    job.documents_total,
                    extra={"job": job.job_id},
                )
            with collection_gate.exclusive(name):
                job.state = "switching"
                # What was written or deleted since it was read (by this or another process).
                now = {d.document_id: d.content_hash for d in self.store.list_documents(name)}
                changed = sorted(d for d, h in now.items() if done.get(d) != h)
                for page in self.store.originals(name, changed):
                    job.chunks_written += self._rebuild(staging, page)
                    done |= {d.document_id: d.content_hash for d in page}
                for gone in sorted(set(done) - set(now)):
                    self.store.delete_document(staging, gone)
                job.documents_done = len(now)
                self.store.switch(name, staging)
            self.reindex_jobs.finish(job, "succeeded")
            self.metrics.reindex_jobs.labels("succeeded").inc()
            log.info(
                "re-index of %s done: %d documents, %d chunks in %.1f s",
                name,
                job.documents_done,
                job.chunks_written,
                time.perf_counter() - started,
                extra={"job": job.job_id},
            )
        except Exception as exc:
            log.exception("re-index of %s failed; the collection is unchanged", name)
            if staging is not None:
                try:
                    self.store.drop_staging(staging)
                except Exception:  # the build stays; the next re-index drops it
                    log.exception("dropping the build %s failed", staging)
            self.reindex_jobs.finish(job, "failed", f"{type(exc).__name__}: {exc}")
            self.metrics.reindex_jobs.labels("failed").inc()
        finally:
            release()
            self.metrics.reindex_running.dec()

    # -- query ----------------------------------------------------------------------------

    def retrieve(self, request: QueryRequest, timer: Timer) -> list[tuple[Candidate, float]]:
        s = self.settings
        name = self._collection(request.collection)
        strategy = request.strategy or s.embedding_strategy
        self._require_collection(name)
        # Chunks are ranked, documents returned: search deeper than top_k so that top_k
        # documents remain after keeping each document's best chunk.
        depth = max(request.top_k, s.fusion_candidates)
        dense_hits, sparse_hits = [], []
        with timer.stage("embed"):
            qvec = self.embedder.embed_query(request.query) if strategy != "sparse" else None
            qsparse = self.bm25.encode_query(request.query) if strategy != "dense" else None
        with timer.stage("search"):
            if qvec is not None:
                dense_hits = best_per_document(self.store.search_dense(name, qvec.tolist(), depth))
            if qsparse is not None:
                sparse_hits = best_per_document(self.store.search_sparse(name, qsparse, depth))
            if strategy == "hybrid":
                candidates = fuse(
                    dense_hits, sparse_hits, s.hybrid_fusion, s.dense_weight, s.rrf_k
                )[: request.top_k]
            else:
                candidates = from_hits(dense_hits or sparse_hits, strategy)[: request.top_k]
        with timer.stage("rerank"):
            reranker = request.reranker or s.reranker
            if reranker == "overlap":
                ranked = overlap_rerank(request.query, candidates, s.rerank_vector_weight)
            elif reranker == "remote":
                try:
                    ranked = remote_rerank(
                        s.rerank_url or s.localai_url or "",
                        s.rerank_model,
                        request.query,
                        candidates,
                    )
                except RerankError:
                    log.warning("rerank backend failed; keeping retrieval order", exc_info=True)
                    ranked = no_rerank(candidates)
            else:
                ranked = no_rerank(candidates)
        ranked = ranked[: min(request.top_n, request.top_k)]
        neighbours = s.context_neighbours if request.neighbours is None else request.neighbours
        if neighbours:
            with timer.stage("context"):
                for candidate, _ in ranked:
                    self._add_context(name, candidate, neighbours)
        return ranked

    def _add_context(self, name: str, candidate: Candidate, neighbours: int) -> None:
        """The best chunk with ``neighbours`` chunks on each side, as one text."""
        p = candidate.payload
        index = int(p.get("chunk_index", 0))
        version = p.get(VERSION_KEY)
        chunks = self.store.chunk_range(
            name,
            str(p.get("document_id", "")),
            str(version) if version is not None else None,
            index - neighbours,
            index + neighbours,
        )
        p["context"] = merge_context(chunks or [p])

    @staticmethod
    def _sources(ranked: list[tuple[Candidate, float]]) -> list[Source]:
        return [
            Source(
                document_id=str(c.payload.get("document_id", "")),
                chunk_index=int(c.payload.get("chunk_index", 0)),
                text=str(c.payload.get("text", "")),
                score=round(c.score, 6),
                rerank_score=round(r, 6),
                metadata=c.payload.get("metadata") or {},
                context=c.payload.get("context"),
            )
            for c, r in ranked
        ]

    def sources(self, ranked: list[tuple[Candidate, float]]) -> list[Source]:
        """The sources of retrieve()'s result."""
        return self._sources(ranked)

    def note_generation_error(self, exc: GenerationError, started: float | None = None) -> None:
        """Count and log a failed LLM call (answered extractively instead)."""
        self.metrics.generation_errors.labels(exc.reason).inc()
        took = f" after {time.perf_counter() - started:.1f} s" if started is not None else ""
        log.warning("generation failed (%s)%s, answering extractively: %s", exc.reason, took, exc)

    def _fallback(
        self, question: str, sources: list[Source], exc: GenerationError, started: float
    ) -> _Answer:
        """The extractive answer after a failed LLM call; metrics and log say why."""
        self.note_generation_error(exc, started)
        return _Answer(extractive_answer(question, sources), "extractive", str(exc), exc.reason)

    def _generate(self, question: str, sources: list[Source]) -> _Answer:
        generator = self.generator
        if generator is None:
            return _Answer(extractive_answer(question, sources), "extractive", None, "no_llm")
        started = time.perf_counter()
        try:
            answer = generator.generate(question, sources)
            if not answer:
                raise GenerationError(
                    f"LLM at {generator.base_url} answered nothing", "empty_answer"
                )
        except GenerationError as exc:
            return self._fallback(question, sources, exc, started)
        return _Answer(answer, "generated", None, None)

    def query(self, request: QueryRequest) -> QueryResponse:
        timer = Timer(self.tracer)
        sources = self._sources(self.retrieve(request, timer))
        result = _Answer("", "none", None, None)
        if request.generate and sources:
            with timer.stage("generate"):
                result = self._generate(request.query, sources)
        timer.stages.setdefault("generate", 0.0)
        latency = timer.done()
        self.metrics.observe_stages("query", latency)
        return QueryResponse(
            answer=result.answer,
            answer_mode=result.mode,
            sources=sources,
            collection_name=self._collection(request.collection),
            generation_error=result.error,
            fallback_reason=result.reason,
            latency_ms=latency,
        )

    def query_stream(self, request: QueryRequest) -> Iterator[SSE]:
        """Server-sent events: ``sources``, then ``token`` events, then ``done``.

        Retrieval runs before the first event so that errors (404, 503) still map to status codes.
        """
        timer = Timer(self.tracer)
        sources = self._sources(self.retrieve(request, timer))
        parent = otel_context.get_current()

        def events() -> Iterator[SSE]:
            yield _sse("sources", [s.model_dump() for s in sources])
            # Not a current span: the generator resumes in other threads (contexts).
            span = self.tracer.start_span("rag.generate", context=parent)
            try:
                result = _Answer("", "none", None, None)
                t0 = time.perf_counter()
                generator = self.generator if request.generate and sources else None
                if request.generate and sources and generator is None:
                    result = _Answer(
                        extractive_answer(request.query, sources), "extractive", None, "no_llm"
                    )
                    yield _sse("token", {"text": result.answer})
                elif generator is not None:
                    parts: list[str] = []
                    try:
                        # closing(): a client that goes away cancels the LLM request.
                        with closing(generator.stream(request.query, sources)) as pieces:
                            for piece in pieces:
                                parts.append(piece)
                                yield _sse("token", {"text": piece})
                        if not "".join(parts).strip():
                            raise GenerationError(
                                f"LLM at {generator.base_url} answered nothing", "empty_answer"
                            )
                        result = _Answer("".join(parts), "generated", None, None)
                    except GenerationError as exc:
                        # Same answer as the JSON path; tokens already sent are superseded by
                        # the answer in `done`.
                        result = self._fallback(request.query, sources, exc, t0)
                        yield _sse(
                            "error",
                            {"generation_error": result.error, "fallback_reason": result.reason},
                        )
                timer.stages["generate"] = (time.perf_counter() - t0) * 1000
            finally:
                span.end()
            latency = timer.done()
            self.metrics.observe_stages("query", latency)
            yield _sse(
                "done",
                {
                    "answer": result.answer,
                    "answer_mode": result.mode,
                    "generation_error": result.error,
                    "fallback_reason": result.reason,
                    "latency_ms": latency,
                },
            )

        return events()


__all__ = [
    "CollectionNotFoundError",
    "EmbedderError",
    "InvalidInputError",
    "Pipeline",
    "ReindexConflictError",
    "StoreUnavailableError",
]
