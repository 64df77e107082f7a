"""Qdrant store: one code path for a server (QDRANT_URL) and embedded mode (QDRANT_PATH)."""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag_pipeline.documents import head_id
from rag_pipeline.layout import (
    CHUNKER_KEY,
    CURRENT_VERSION_KEY,
    DENSE,
    ORIGINAL_KEPT_KEY,
    ORIGINAL_KEY,
    SPARSE,
    SPARSE_TOKENIZERS,
    VERSION_KEY,
    collection_layout,
)
from rag_pipeline.sparse import SparseVector
from rag_pipeline.stores.base import (
    ChunkPoint,
    CollectionNotFoundError,
    DocumentInfo,
    DocumentVersion,
    ExistingChunk,
    Hit,
    Original,
    StoredDocument,
    StoreUnavailableError,
    VectorStore,
    is_staging,
    mismatch,
    size_mismatch,
    staging_name,
    summarise,
    tokenizer_mismatch,
)

log = logging.getLogger("rag_pipeline.stores.qdrant")

_CHUNK_FIELDS = ["document_id", "content_hash", "chunks_total", "text_hash"]
_META_FIELDS = [*_CHUNK_FIELDS, "chunk_index", "metadata"]
_STATE_FIELDS = [*_CHUNK_FIELDS, VERSION_KEY, CURRENT_VERSION_KEY, ORIGINAL_KEPT_KEY, "written_at"]
# On a Qdrant server, a chunk of a version that is not current may be another replica's write
# in progress (its switch still to come): only after this long is it taken for a crash's
# leftover and deleted, and a write whose switch would come later than half of it gives up.
# Embedded Qdrant has one process (it locks its folder) whose writers of a document take
# turns, so there every version that is not current is dead at once.
PENDING_GRACE_S = 600.0


def _has(key: str) -> models.Filter:
    return models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=key))])


def _lacks(key: str) -> models.IsEmptyCondition:
    return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))


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


def _vectors(point: ChunkPoint) -> dict[str, Any]:
    vectors: dict[str, Any] = {DENSE: point.dense}
    if point.sparse.indices:
        vectors[SPARSE] = models.SparseVector(
            indices=point.sparse.indices, values=point.sparse.values
        )
    return vectors


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
        self.pending_grace_s = PENDING_GRACE_S if self.remote else 0.0

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

    # -- the one place a collection name is resolved -----------------------------------------
    #
    # Point operations (search, scroll, upsert, delete, count) are sent with the logical name:
    # Qdrant resolves an alias per request, atomically, so a query runs on the build it found.
    # Collection operations (exists, config, metadata, delete, listing) resolve it here.

    def _aliases(self) -> dict[str, str]:
        """alias -> physical collection."""
        with self._call():
            return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def physical_name(self, name: str) -> str:
        return self._aliases().get(name, name)

    def collection_exists(self, name: str) -> bool:
        with self._call():
            return bool(self.client.collection_exists(self.physical_name(name)))

    def layout(self, dimension: int) -> dict[str, Any]:
        return collection_layout(dimension, server=self.remote)

    def check_collection(self, name: str, dimension: int) -> bool:
        with self._call():
            physical = self.physical_name(name)
            if not self.client.collection_exists(physical):
                return False
            self._check_layout(name, dimension, physical)
            return True

    def ensure_collection(
        self, name: str, dimension: int, chunker: dict[str, Any] | None = None
    ) -> bool:
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
                metadata={CHUNKER_KEY: chunker} if chunker else None,
            )
            for field, schema in layout.get("payload_indexes", {}).items():
                self.client.create_payload_index(
                    name, field, field_schema=models.PayloadSchemaType(schema)
                )
            return True

    def _check_layout(self, name: str, dimension: int, physical: str) -> None:
        """Refuse a collection whose vectors differ from the layout (another embedder, or not
        made by or for this service). Payload indexes only speed things up: not checked."""
        layout = self.layout(dimension)
        params = self.client.get_collection(physical).config.params
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
                for other in sparse:
                    if other in SPARSE_TOKENIZERS:
                        raise tokenizer_mismatch(name, SPARSE_TOKENIZERS[other], layout)
                raise mismatch(name, f"has no {vector!r} sparse vector", layout)
            modifier = _value(sparse[vector].modifier) or "none"
            if modifier != spec["modifier"]:
                problem = f"has the {vector!r} sparse vector with modifier {modifier}"
                raise mismatch(name, problem, layout)

    def list_collections(self) -> list[tuple[str, int]]:
        with self._call():
            physical = [c.name for c in self.client.get_collections().collections]
            aliases = self._aliases()
            named = set(aliases.values())
            # Logical names: aliases, and collections no alias names that are not builds.
            names = {a: p for a, p in aliases.items() if p in physical}
            names |= {p: p for p in physical if p not in named and not is_staging(p)}
            # Chunks only: not the head points that name each document's current version.
            chunks = models.Filter(must=[_lacks(CURRENT_VERSION_KEY)])
            return [
                (n, self.client.count(names[n], count_filter=chunks, exact=True).count)
                for n in sorted(names)
            ]

    def delete_collection(self, name: str) -> bool:
        with self._call():
            physical = self.physical_name(name)
            if not self.client.collection_exists(physical):
                return False
            if physical != name:
                self.client.update_collection_aliases(
                    change_aliases_operations=[
                        models.DeleteAliasOperation(
                            delete_alias=models.DeleteAlias(alias_name=name)
                        )
                    ]
                )
            self.client.delete_collection(physical)
            return True

    def _upsert(self, name: str, points: list[ChunkPoint], written_at: float) -> None:
        # A chunk without BM25 terms (every chunk but a document's first) has no sparse
        # vector at all: Qdrant's IDF then counts documents, not chunks.
        structs = [
            models.PointStruct(
                id=p.id, vector=_vectors(p), payload={**p.payload, "written_at": written_at}
            )
            for p in points
        ]
        with self._call():
            self.client.upsert(name, points=structs, wait=True)

    def _scroll(
        self, name: str, flt: models.Filter | None, fields: list[str] | bool, limit: int = 1024
    ) -> Iterator[models.Record]:
        offset = None
        while True:
            with self._call():
                records, offset = self.client.scroll(
                    name,
                    scroll_filter=flt,
                    limit=limit,
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

    # -- versions -------------------------------------------------------------------------
    #
    # Each document has one "head" point (no vectors, so searches never return it) whose
    # payload names its current version. A write stores the new version's chunks (tagged with
    # their version_id, invisible while the head names another version), then rewrites the
    # head (a single point write, atomic in Qdrant and in embedded mode's SQLite), then deletes
    # the replaced chunks. A crash before the head write leaves the old version current and
    # the new chunks invisible; after it, the new version current and the old chunks
    # invisible. Invisible chunks are deleted by the document's next write. Chunks without a
    # version_id (rag_pipeline 0.2.0 and earlier) are current while the document has no head.

    def stored_documents(self, name: str, document_ids: list[str]) -> dict[str, StoredDocument]:
        if not document_ids:
            return {}
        heads: dict[str, dict[str, Any]] = {}
        chunks: dict[str, list[tuple[ExistingChunk, float]]] = {}
        for r in self._scroll(name, self._doc_filter(document_ids), _STATE_FIELDS):
            p = r.payload or {}
            if CURRENT_VERSION_KEY in p:
                heads[p["document_id"]] = p
                continue
            chunk = ExistingChunk(
                str(r.id),
                p["document_id"],
                p.get("content_hash", ""),
                int(p.get("chunks_total", 0)),
                p.get("text_hash"),
                p.get(VERSION_KEY),
            )
            chunks.setdefault(chunk.document_id, []).append((chunk, float(p.get("written_at", 0))))
        cutoff = time.time() - self.pending_grace_s
        out: dict[str, StoredDocument] = {}
        for doc_id in {*heads, *chunks}:
            have = chunks.get(doc_id, [])
            head = heads.get(doc_id)
            current = head.get(CURRENT_VERSION_KEY) if head else None
            state = summarise(doc_id, [c for c, _ in have if c.version_id == current])
            if head is not None:  # the head must describe the chunks it makes current
                state.complete = (
                    state.complete
                    and bool(current)
                    and (
                        state.content_hash,
                        state.text_hash,
                        state.chunks_total,
                    )
                    == (head.get("content_hash"), head.get("text_hash"), head.get("chunks_total"))
                )
                state.original_missing = not head.get(ORIGINAL_KEPT_KEY)
            # Dead: legacy chunks under a head, and versions never made current (a crashed
            # write) that are old enough not to be another replica's write in progress.
            state.replaced_ids += [
                c.id
                for c, at in have
                if c.version_id != current and (c.version_id is None or at <= cutoff)
            ]
            out[doc_id] = state
        return out

    @staticmethod
    def _head(version: DocumentVersion | None, document_id: str) -> models.PointStruct:
        """The head point naming ``version`` as current (None: a tombstone, nothing is)."""
        payload: dict[str, Any] = {
            "document_id": document_id,
            CURRENT_VERSION_KEY: version.version_id if version else "",
            "committed_at": time.time(),
        }
        if version is not None:
            payload |= {
                "content_hash": version.content_hash,
                "text_hash": version.text_hash,
                "chunks_total": len(version.points),
                "metadata": version.metadata,
            }
            if version.text is not None:
                payload |= {ORIGINAL_KEY: version.text, ORIGINAL_KEPT_KEY: True}
        return models.PointStruct(id=head_id(document_id), vector={}, payload=payload)

    def write_versions(self, name: str, versions: list[DocumentVersion], batch_size: int) -> None:
        points = [p for v in versions for p in v.points]
        started = time.time()
        written: list[str] = []
        try:
            for start in range(0, len(points), batch_size):
                batch = points[start : start + batch_size]
                self._upsert(name, batch, started)
                written.extend(p.id for p in batch)
        except Exception:
            # Not current, so never visible; removed now rather than by the next write.
            try:
                self.delete_points(name, written)
            except Exception:  # the original error matters more; log the cleanup failure
                log.exception("cleanup of %d uncommitted points failed", len(written))
            raise
        if self.remote and time.time() - started > self.pending_grace_s / 2:
            # Another replica's write may take these chunks for a crash's leftovers soon.
            self.delete_points(name, written)
            raise StoreUnavailableError("Qdrant took too long to store the new chunks; retry")
        heads = [self._head(v, v.document_id) for v in versions]
        for start in range(0, len(heads), batch_size):
            with self._call():
                self.client.upsert(name, points=heads[start : start + batch_size], wait=True)
        replaced = [i for v in versions if v.previous for i in v.previous.replaced_ids]
        try:
            self.delete_points(name, replaced)
        except (StoreUnavailableError, UnexpectedResponse):
            # The new versions are current; what is left is invisible and goes next time.
            log.warning("%d replaced chunks left for the next write", len(replaced), exc_info=True)

    def delete_points(self, name: str, ids: list[str]) -> None:
        if not ids:
            return
        with self._call():
            self.client.delete(name, points_selector=models.PointIdsList(points=ids), wait=True)

    def delete_document(self, name: str, document_id: str) -> int:
        state = self.stored_documents(name, [document_id]).get(document_id)
        if state is None:
            return 0
        # A tombstone head first hides every chunk at once (a legacy document's too), then
        # the chunks go, then the tombstone. A crash in between leaves the document invisible.
        with self._call():
            self.client.upsert(name, points=[self._head(None, document_id)], wait=True)
        self.delete_points(name, state.replaced_ids)
        self.delete_points(name, [head_id(document_id)])
        return state.chunks

    @staticmethod
    def _is_current(payload: dict[str, Any], heads: dict[str, str]) -> bool:
        current = heads.get(payload.get("document_id", ""))
        version = payload.get(VERSION_KEY)
        return version is None if current is None else bool(current) and version == current

    def _current_hits(
        self, name: str, limit: int, search: Callable[[int, int], list[models.ScoredPoint]]
    ) -> list[Hit]:
        """The best ``limit`` hits of the documents' current versions: ``search(limit,
        offset)`` pages through the raw results, which may hold other versions' chunks."""
        hits: list[Hit] = []
        offset, page = 0, limit
        # Embedded mode: search and head lookup see one state (writes take the same lock).
        with self._lock:
            while True:
                with self._call():
                    points = search(page, offset)
                    doc_ids = {str((p.payload or {}).get("document_id", "")) for p in points}
                    heads = {
                        str((r.payload or {}).get("document_id")): str(
                            (r.payload or {}).get(CURRENT_VERSION_KEY, "")
                        )
                        for r in self.client.retrieve(
                            name,
                            ids=[head_id(d) for d in doc_ids],
                            with_payload=["document_id", CURRENT_VERSION_KEY],
                        )
                    }
                hits.extend(
                    Hit(str(p.id), float(p.score), dict(p.payload or {}))
                    for p in points
                    if self._is_current(p.payload or {}, heads)
                )
                if len(hits) >= limit or len(points) < page:
                    return hits[:limit]
                offset += page
                page *= 2

    # Recorded in the collection's metadata (Qdrant 1.16+, and embedded mode).
    def get_chunker(self, name: str) -> dict[str, Any] | None:
        with self._call():
            metadata = self.client.get_collection(self.physical_name(name)).config.metadata or {}
        chunker = metadata.get(CHUNKER_KEY)
        return dict(chunker) if isinstance(chunker, dict) else None

    def set_chunker(self, name: str, chunker: dict[str, Any]) -> None:
        with self._call():
            physical = self.physical_name(name)
            metadata = dict(self.client.get_collection(physical).config.metadata or {})
            self.client.update_collection(physical, metadata={**metadata, CHUNKER_KEY: chunker})

    def has_chunks(self, name: str) -> bool:
        chunks = models.Filter(must=[_lacks(CURRENT_VERSION_KEY)])
        with self._call():
            records, _ = self.client.scroll(
                name, scroll_filter=chunks, limit=1, with_payload=False, with_vectors=False
            )
        return bool(records)

    def chunk_range(
        self, name: str, document_id: str, version_id: str | None, first: int, last: int
    ) -> list[dict[str, Any]]:
        version: models.Condition = (
            _lacks(VERSION_KEY)
            if version_id is None
            else models.FieldCondition(key=VERSION_KEY, match=models.MatchValue(value=version_id))
        )
        flt = models.Filter(
            must=[
                models.FieldCondition(
                    key="document_id", match=models.MatchValue(value=document_id)
                ),
                models.FieldCondition(key="chunk_index", range=models.Range(gte=first, lte=last)),
                version,
            ]
        )
        payloads = [dict(r.payload or {}) for r in self._scroll(name, flt, True)]
        return sorted(payloads, key=lambda p: int(p.get("chunk_index", 0)))

    def search_dense(self, name: str, vector: list[float], limit: int) -> list[Hit]:
        return self._current_hits(
            name,
            limit,
            lambda n, offset: (
                self.client.query_points(
                    name, query=vector, using=DENSE, limit=n, offset=offset, with_payload=True
                ).points
            ),
        )

    def search_sparse(self, name: str, vector: SparseVector, limit: int) -> list[Hit]:
        if not vector.indices:
            return []
        query = models.SparseVector(indices=vector.indices, values=vector.values)
        try:
            return self._current_hits(
                name,
                limit,
                lambda n, offset: (
                    self.client.query_points(
                        name, query=query, using=SPARSE, limit=n, offset=offset, with_payload=True
                    ).points
                ),
            )
        except (ValueError, UnexpectedResponse):
            # No SPARSE vector: say why (checked only on failure, so queries pay nothing).
            self._check_sparse(name)
            raise

    def _check_sparse(self, name: str) -> None:
        """Raise tokenizer_mismatch when the collection's sparse vector is another tokenizer's."""
        with self._call():
            params = self.client.get_collection(self.physical_name(name)).config.params
        sparse = params.sparse_vectors or {}
        if SPARSE not in sparse:
            dense = params.vectors.get(DENSE) if isinstance(params.vectors, dict) else None
            for other in sparse:
                if other in SPARSE_TOKENIZERS:
                    layout = self.layout(dense.size if dense is not None else 0)
                    raise tokenizer_mismatch(name, SPARSE_TOKENIZERS[other], layout)

    def list_documents(self, name: str) -> list[DocumentInfo]:
        docs: dict[str, DocumentInfo] = {}
        headed: set[str] = set()
        head_fields = ["document_id", CURRENT_VERSION_KEY, *_META_FIELDS]
        # Documents written by rag_pipeline 0.2.0 or earlier: chunks without a version, no head.
        legacy = models.Filter(must=[_lacks(VERSION_KEY), _lacks(CURRENT_VERSION_KEY)])
        heads: Iterable[models.Record]
        chunks: Iterable[models.Record]
        if self.remote:  # the head points by their payload index
            heads = self._scroll(name, _has(CURRENT_VERSION_KEY), head_fields)
            chunks = self._scroll(name, legacy, _META_FIELDS)
        else:  # embedded filters run in Python: one pass over every point is cheaper
            points = list(self._scroll(name, None, [*head_fields, VERSION_KEY]))
            heads = [r for r in points if CURRENT_VERSION_KEY in (r.payload or {})]
            chunks = [
                r for r in points if not {CURRENT_VERSION_KEY, VERSION_KEY} & set(r.payload or {})
            ]
        for r in heads:
            p = r.payload or {}
            headed.add(p["document_id"])
            if p.get(CURRENT_VERSION_KEY):  # "": a tombstone (deletion under way)
                docs[p["document_id"]] = DocumentInfo(
                    p["document_id"],
                    p.get("content_hash", ""),
                    int(p.get("chunks_total", 0)),
                    p.get("metadata") or {},
                    p.get("text_hash"),
                )
        for r in chunks:
            p = r.payload or {}
            if p["document_id"] in headed:
                continue  # rewritten already; these chunks are leftovers
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

    # -- originals and re-index ---------------------------------------------------------------
    #
    # The original is in the head point's payload (ORIGINAL_KEY): written by the one point
    # write that makes its version current, so no ingest leaves an original without its
    # chunks or the reverse, and a delete removes both. Heads have no vectors: searches never
    # return them, and listings ask for named payload fields only, so texts are read just
    # for a re-index.

    def missing_originals(self, name: str) -> list[str]:
        kept = models.Filter(must=[_has(CURRENT_VERSION_KEY), _has(ORIGINAL_KEY)])
        have = {
            str((r.payload or {}).get("document_id"))
            for r in self._scroll(name, kept, ["document_id"])
        }
        return sorted(d.document_id for d in self.list_documents(name) if d.document_id not in have)

    def originals(
        self, name: str, document_ids: list[str] | None = None, page: int = 64
    ) -> Iterator[list[Original]]:
        must: list[models.Condition] = [_has(CURRENT_VERSION_KEY), _has(ORIGINAL_KEY)]
        if document_ids is not None:
            if not document_ids:
                return
            must.append(
                models.FieldCondition(key="document_id", match=models.MatchAny(any=document_ids))
            )
        fields = ["document_id", CURRENT_VERSION_KEY, "content_hash", "text_hash", "metadata"]
        batch: list[Original] = []
        for r in self._scroll(name, models.Filter(must=must), [*fields, ORIGINAL_KEY], page):
            p = r.payload or {}
            if not p.get(CURRENT_VERSION_KEY):
                continue  # a tombstone: the document is being deleted
            batch.append(
                Original(
                    str(p["document_id"]),
                    str(p[CURRENT_VERSION_KEY]),
                    str(p.get("content_hash", "")),
                    str(p.get("text_hash", "")),
                    dict(p.get("metadata") or {}),
                    str(p[ORIGINAL_KEY]),
                )
            )
            if len(batch) >= page:
                yield sorted(batch, key=lambda o: o.document_id)
                batch = []
        if batch:
            yield sorted(batch, key=lambda o: o.document_id)

    def create_staging(self, name: str, dimension: int, chunker: dict[str, Any]) -> str:
        staging = staging_name(name)
        self.ensure_collection(staging, dimension, chunker)
        return staging

    def switch(self, name: str, staging: str) -> None:
        # Embedded mode: under the store's lock, so this process's queries see the old
        # collection or the new one, never neither.
        with self._call():
            old = self.physical_name(name)
            create = models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=staging, alias_name=name)
            )
            if old != name:
                # Moving an alias is one atomic request (delete + create in one call).
                delete = models.DeleteAliasOperation(
                    delete_alias=models.DeleteAlias(alias_name=name)
                )
                self.client.update_collection_aliases(change_aliases_operations=[delete, create])
            else:
                # A collection made before 0.5.0 holds the name itself, and an alias cannot
                # share a collection's name: drop it, then name the build. On a Qdrant server
                # other processes may get a 404 between the two requests (milliseconds);
                # every later re-index is the atomic alias move above.
                if self.client.collection_exists(name):
                    self.client.delete_collection(name)
                self.client.update_collection_aliases(change_aliases_operations=[create])
                return
        self.drop_staging(old)

    def drop_staging(self, staging: str) -> None:
        with self._call():
            if self.client.collection_exists(staging):
                self.client.delete_collection(staging)

    def leftover_staging(self, name: str) -> list[str]:
        with self._call():
            named = set(self._aliases().values())
            return sorted(
                c.name
                for c in self.client.get_collections().collections
                if c.name.startswith(name + ".") and is_staging(c.name) and c.name not in named
            )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
