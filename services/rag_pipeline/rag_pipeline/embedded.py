"""The stable in-process API of the RAG pipeline.

Everything a program needs to ingest into, list and prune a collection in its own process,
chunked and embedded exactly as the HTTP service does it (the Ansible module
``aistack.platform.document_ingest`` uses only this module). Arguments and results are plain
JSON-able values, the same as the HTTP API's; the service's other modules are internal and may
change between releases.

::

    from rag_pipeline.embedded import EmbeddedPipeline, LayoutMismatchError

    with EmbeddedPipeline(qdrant_path="/var/lib/rag/qdrant", chunk_size=512) as rag:
        rag.check_collection("docs")        # loads the embedder; raises on another layout
        rag.layout()                        # {"embedding_model", "dimension", "vectors", ...}
        rag.ingest([{"text": "...", "document_id": "a.md", "metadata": {}}], "docs")
        rag.list_documents("docs")          # {"a.md": {"content_hash", "text_hash", ...}}
        rag.delete("a.md", "docs")          # -> chunks removed
        rag.reindex("docs")                 # re-cut and re-embed from the kept originals

Settings are keyword arguments named like the fields of the service's configuration (the
lower-case names of its environment variables: ``qdrant_url``, ``qdrant_api_key``,
``qdrant_path``, ``qdrant_ca_cert``, ``qdrant_verify_tls``, ``embedding_backend``,
``embedding_model``, ``chunk_size`` ...). Environment variables are not read: what a program
passes is all that counts. Errors are the exception types exported here.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from rag_pipeline import __version__
from rag_pipeline.chunking import ChunkingConfigError
from rag_pipeline.embeddings import EmbedderError
from rag_pipeline.limits import LimitExceededError, check_document
from rag_pipeline.models import COLLECTION_PATTERN, DocumentIn
from rag_pipeline.pipeline import InvalidInputError, Pipeline, ReindexConflictError
from rag_pipeline.settings import Settings
from rag_pipeline.stores import (
    CollectionMismatchError,
    CollectionNotFoundError,
    StoreUnavailableError,
)

LayoutMismatchError = CollectionMismatchError
"""The collection exists with another layout; ``.layout`` is the one it needs."""


class SettingsError(ValueError):
    """An unknown setting name or an invalid value."""


class _KeywordSettings(Settings):
    """The service's Settings from keyword arguments only (no environment variables)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def make_settings(**settings: Any) -> Settings:
    """Validate keyword settings; raise SettingsError naming unknown or invalid ones."""
    known = Settings.model_fields
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise SettingsError(
            "unknown setting(s) {}; the settings are: {}".format(
                ", ".join(unknown), ", ".join(sorted(known))
            )
        )
    try:
        return _KeywordSettings(**settings)
    except ValidationError as exc:
        problems = "; ".join(
            "{}: {}".format(".".join(str(p) for p in e["loc"]) or "settings", e["msg"])
            for e in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None


def _collection(name: str) -> str:
    """The name, when it is one the HTTP API accepts too; else InvalidInputError."""
    if not isinstance(name, str) or not re.fullmatch(COLLECTION_PATTERN, name):
        raise InvalidInputError(
            f"invalid collection name {name!r}: 1 to 64 letters, digits, '_' or '-'"
        )
    return name


class EmbeddedPipeline:
    """A vector store and an embedder in this process; use it as a context manager.

    The store is opened here (embedded Qdrant locks its folder until ``close()``); the
    embedding model is loaded on first use (``check_collection``, ``layout``, ``ingest``).
    """

    version = __version__

    def __init__(self, **settings: Any) -> None:
        self.settings = make_settings(**settings)
        try:
            self._pipeline = Pipeline.from_settings(self.settings)
        except StoreUnavailableError:
            raise
        except Exception as exc:  # e.g. embedded storage locked by another process
            raise StoreUnavailableError(f"cannot open the vector store: {exc}") from exc

    def __enter__(self) -> EmbeddedPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store (releases embedded Qdrant's lock)."""
        self._pipeline.close()

    def check_collection(self, name: str) -> bool:
        """Load the embedder; whether the collection exists. Raise LayoutMismatchError when
        it exists with another layout (the message names the layout to create it with)."""
        return self._pipeline.check_collection(_collection(name))

    def layout(self) -> dict[str, Any]:
        """The collection layout for this embedder and store, as GET /collection-layout."""
        return self._pipeline.layout()

    def list_documents(self, name: str) -> dict[str, dict[str, Any]] | None:
        """document_id -> summary (``content_hash``, ``text_hash``, ``chunks``, ``metadata``),
        as GET /documents; None when the collection does not exist."""
        try:
            documents = self._pipeline.list_documents(_collection(name))
        except CollectionNotFoundError:
            return None
        return {d.document_id: d.model_dump() for d in documents}

    def ingest(self, documents: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
        """Ingest ``{"text", "document_id"?, "metadata"?}`` documents in one batch (the
        collection is created when missing); per-document results as POST /ingest/batch."""
        try:
            batch = [DocumentIn(**d) for d in documents]
        except (TypeError, ValidationError) as exc:
            raise InvalidInputError(f"invalid document: {exc}") from None
        for i, doc in enumerate(batch):
            try:
                check_document(doc.text, doc.metadata, self._pipeline.settings, f"documents[{i}].")
            except LimitExceededError as exc:
                raise InvalidInputError(str(exc)) from None
        response = self._pipeline.ingest_batch(batch, _collection(name))
        return [r.model_dump() for r in response.results]

    def delete(self, document_id: str, name: str) -> int:
        """Delete every chunk of the document; the number removed (0: it did not exist).
        Raise CollectionNotFoundError when the collection does not exist."""
        return self._pipeline.delete_document(document_id, _collection(name))

    def reindex(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Re-chunk and re-embed the collection from its kept originals with this pipeline's
        embedder, chunker and tokenizer, as POST /collections/{name}/reindex does: into a new
        physical collection that replaces the old one in one step; a failure leaves the old
        one as it was, and nothing behind. Waits for the job (at most ``timeout`` seconds;
        None: until it ends) and returns it as GET /collections/{name}/reindex shows it:
        ``state`` succeeded or failed (``error`` says why), or running at the timeout (the job
        goes on in a thread of this process; ``close()`` before it ends makes it fail).
        Raise CollectionNotFoundError, ReindexConflictError (a re-index of the collection is
        running, or documents have no kept original: the message says what to do) or
        ChunkingConfigError."""
        job = self._pipeline.start_reindex(_collection(name))
        done = self._pipeline.reindex_jobs.wait(job.collection, timeout)
        if done is not None and done.job_id == job.job_id:
            job = done
        return job.model_dump()


__all__ = [
    "ChunkingConfigError",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "EmbeddedPipeline",
    "EmbedderError",
    "InvalidInputError",
    "LayoutMismatchError",
    "ReindexConflictError",
    "SettingsError",
    "StoreUnavailableError",
    "make_settings",
]
