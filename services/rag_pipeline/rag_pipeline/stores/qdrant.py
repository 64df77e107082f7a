"""Qdrant store: one code path for a server (QDRANT_URL) and embedded mode (QDRANT_PATH)."""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag_pipeline.layout import DENSE, SPARSE, collection_layout
from rag_pipeline.sparse import SparseVector
from rag_pipeline.stores.base import (
    ChunkPoint,
    CollectionNotFoundError,
    DocumentInfo,
    ExistingChunk,
    Hit,
    StoreUnavailableError,
    VectorStore,
    mismatch,
    size_mismatch,
)

_CHUNK_FIELDS = ["document_id", "content_hash", "chunks_total", "text_hash"]
_META_FIELDS = [*_CHUNK_FIELDS, "chunk_index", "metadata"]


def _value(enum: Any) -> Any:
    """The wire value of a qdrant-client enum (None stays None)."""
    return getattr(enum, "value", enum)


def tls_kwargs(url: str, ca_cert: str | None, verify_tls: bool) -> dict[str, Any]:
    """QdrantClient keyword arguments for TLS to ``url`` (none for http://)."""
    if not url.startswith("https://"):
        return {}
    kwargs: dict[str, Any] = {"https": True}
    if ca_cert:
        try:
            kwargs["verify"] = ssl.create_default_context(cafile=ca_cert)
        except (OSError, ssl.SSLError) as exc:
            raise StoreUnavailableError(f"cannot read QDRANT_CA_CERT {ca_cert}: {exc}") from exc
    elif not verify_tls:
        kwargs["verify"] = False
    return kwargs


class QdrantStore(VectorStore):
    kind = "qdrant"

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        path: str | None = None,
        *,
        ca_cert: str | None = None,
        verify_tls: bool = True,
        timeout: int = 30,
    ) -> None:
        if url:
            self.client = QdrantClient(
                url=url,
                api_key=api_key,
                timeout=timeout,
                check_compatibility=False,
                **tls_kwargs(url, ca_cert, verify_tls),
            )
            self.location = url
            self._lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        else:
            self.client = QdrantClient(path=path) if path else QdrantClient(":memory:")
            self.location = path or ":memory:"
            # Embedded mode keeps state in Python objects without locking of its own.
            self._lock = threading.RLock()
        self.remote = bool(url)

    @contextlib.contextmanager
    def _call(self) -> Iterator[None]:
        try:
            with self._lock:
                yield
        except (ResponseHandlingException, httpx.TransportError, ConnectionError) as exc:
            raise StoreUnavailableError(f"Qdrant at {self.location} is unreachable: {exc}") from exc
        except UnexpectedResponse as exc:
            if exc.status_code == 404:
                raise CollectionNotFoundError(str(exc)) from exc
            if exc.status_code in (502, 503, 504):
                raise StoreUnavailableError(f"Qdrant at {self.location}: {exc}") from exc
            raise

    def ping(self) -> None:
        with self._call():
            self.client.get_collections()

    def collection_exists(self, name: str) -> bool:
        with self._call():
            return bool(self.client.collection_exists(name))

    def layout(self, dimension: int) -> dict[str, Any]:
        return collection_layout(dimension, server=self.remote)

    def check_collection(self, name: str, dimension: int) -> bool:
        with self._call():
            if not self.client.collection_exists(name):
                return False
            self._check_layout(name, dimension)
            return True

    def ensure_collection(self, name: str, dimension: int) -> bool:
        layout = self.layout(dimension)
        # One lock for check and create: embedded mode has no locking of its own.
        with self._call():
            if self.check_collection(name, dimension):
                return False
            self.client.create_collection(
                name,
                vectors_config={
                    vector: models.VectorParams(
                        size=spec["size"], distance=models.Distance(spec["distance"])
                    )
                    for vector, spec in layout["vectors"].items()
                },
                sparse_vectors_config={
                    vector: models.SparseVectorParams(modifier=models.Modifier(spec["modifier"]))
                    for vector, spec in layout["sparse_vectors"].items()
                },
            )
            for field, schema in layout.get("payload_indexes", {}).items():
                self.client.create_payload_index(
                    name, field, field_schema=models.PayloadSchemaType(schema)
                )
            return True

    def _check_layout(self, name: str, dimension: int) -> None:
        """Refuse a collection whose vectors differ from the layout (another embedder, or not
        made by or for this service). Payload indexes only speed things up: not checked."""
        layout = self.layout(dimension)
        params = self.client.get_collection(name).config.params
        unnamed = {"<unnamed>": params.vectors} if params.vectors else {}
        dense = params.vectors if isinstance(params.vectors, dict) else unnamed
        sparse = params.sparse_vectors or {}
        for vector, spec in layout["vectors"].items():
            have = dense.get(vector)
            if have is None:
                problem = f"has no {vector!r} named vector (it has {sorted(dense) or 'none'})"
            elif have.size != spec["size"]:
                problem = size_mismatch(vector, have.size, spec["size"])
            elif _value(have.distance) != spec["distance"]:
                problem = f"compares {vector!r} vectors by {_value(have.distance)}"
            else:
                continue
            raise mismatch(name, problem, layout)
        for vector, spec in layout["sparse_vectors"].items():
            if vector not in sparse:
                raise mismatch(name, f"has no {vector!r} sparse vector", layout)
            modifier = _value(sparse[vector].modifier) or "none"
            if modifier != spec["modifier"]:
                problem = f"has the {vector!r} sparse vector with modifier {modifier}"
                raise mismatch(name, problem, layout)

    def list_collections(self) -> list[tuple[str, int]]:
        with self._call():
            names = [c.name for c in self.client.get_collections().collections]
            return [(n, self.client.count(n, exact=True).count) for n in sorted(names)]

    def delete_collection(self, name: str) -> bool:
        with self._call():
            if not self.client.collection_exists(name):
                return False
            self.client.delete_collection(name)
            return True

    def upsert(self, name: str, points: list[ChunkPoint]) -> None:
        structs = [
            models.PointStruct(
                id=p.id,
                vector={
                    DENSE: p.dense,
                    SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                },
                payload=p.payload,
            )
            for p in points
        ]
        with self._call():
            self.client.upsert(name, points=structs, wait=True)

    def _scroll(
        self, name: str, flt: models.Filter | None, fields: list[str] | bool
    ) -> Iterator[models.Record]:
        offset = None
        while True:
            with self._call():
                records, offset = self.client.scroll(
                    name,
                    scroll_filter=flt,
                    limit=1024,
                    offset=offset,
                    with_payload=fields,
                    with_vectors=False,
                )
            yield from records
            if offset is None:
                return

    @staticmethod
    def _doc_filter(document_ids: list[str]) -> models.Filter:
        return models.Filter(
            must=[models.FieldCondition(key="document_id", match=models.MatchAny(any=document_ids))]
        )

    def existing_chunks(self, name: str, document_ids: list[str]) -> list[ExistingChunk]:
        if not document_ids:
            return []
        return [
            ExistingChunk(
                str(r.id),
                r.payload["document_id"],
                r.payload.get("content_hash", ""),
                int(r.payload.get("chunks_total", 0)),
                r.payload.get("text_hash"),
            )
            for r in self._scroll(name, self._doc_filter(document_ids), _CHUNK_FIELDS)
            if r.payload
        ]

    def delete_points(self, name: str, ids: list[str]) -> None:
        if not ids:
            return
        with self._call():
            self.client.delete(name, points_selector=models.PointIdsList(points=ids), wait=True)

    def delete_document(self, name: str, document_id: str) -> int:
        ids = [c.id for c in self.existing_chunks(name, [document_id])]
        self.delete_points(name, ids)
        return len(ids)

    @staticmethod
    def _hits(points: list[models.ScoredPoint]) -> list[Hit]:
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

    def search_dense(self, name: str, vector: list[float], limit: int) -> list[Hit]:
        with self._call():
            result = self.client.query_points(
                name, query=vector, using=DENSE, limit=limit, with_payload=True
            )
        return self._hits(result.points)

    def search_sparse(self, name: str, vector: SparseVector, limit: int) -> list[Hit]:
        if not vector.indices:
            return []
        with self._call():
            result = self.client.query_points(
                name,
                query=models.SparseVector(indices=vector.indices, values=vector.values),
                using=SPARSE,
                limit=limit,
                with_payload=True,
            )
        return self._hits(result.points)

    def list_documents(self, name: str) -> list[DocumentInfo]:
        docs: dict[str, DocumentInfo] = {}
        for r in self._scroll(name, None, _META_FIELDS):
            p = r.payload or {}
            info = docs.get(p["document_id"])
            if info is None:
                info = docs[p["document_id"]] = DocumentInfo(
                    p["document_id"],
                    p.get("content_hash", ""),
                    0,
                    p.get("metadata") or {},
                    p.get("text_hash"),
                )
            if p.get("text_hash") is None:
                info.text_hash = None  # a chunk of an older version: the document is not known
            info.chunks += 1
        return sorted(docs.values(), key=lambda d: d.document_id)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
