"""PostgreSQL + pgvector store (psycopg 3).

pgvector 0.6 has no sparse vector type, so BM25 lives in a terms table (point, term id, BM25
document weight); IDF is computed in SQL at query time with the same formula Qdrant's ``idf``
modifier uses, over the points that have terms as Qdrant counts the points that have a sparse
vector, so both stores rank identically.

A document is replaced in one transaction (delete the old chunks, insert the new ones) under
a transaction-scoped advisory lock on (collection, document_id), so concurrent writers of one
document, in any number of processes, commit one after the other and a crash leaves either
version whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from rag_pipeline.layout import collection_layout
from rag_pipeline.sparse import LEGACY_TOKENIZER, TOKENIZER, SparseVector
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
    staging_name,
    summarise,
    tokenizer_mismatch,
)

_REGISTRY = "rag_collections"
_CHUNKS, _TERMS, _ORIGINALS = "rag_chunks_", "rag_terms_", "rag_originals_"
# PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
_MAX_IDENTIFIER = 63


def table_name(prefix: str, name: str) -> str:
    """The table of collection ``name``: prefix + name while that fits in an identifier (as
    rag_pipeline 0.2.0 named every table), else a readable cut of the name plus a hash of
    all of it, so long names that share their first 50 characters get tables of their own."""
    full = prefix + name
    if len(full.encode()) <= _MAX_IDENTIFIER:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    room = _MAX_IDENTIFIER - len(prefix) - len(digest) - 1
    return f"{prefix}{name.encode()[:room].decode(errors='ignore')}_{digest}"


def _truncated(prefix: str, name: str) -> str:
    """What PostgreSQL made of prefix + name up to rag_pipeline 0.2.0 (cut at 63 bytes)."""
    return (prefix + name).encode()[:_MAX_IDENTIFIER].decode(errors="ignore")


def _table_exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s",
        (table,),
    ).fetchone()
    return row is not None


def _lock_key(name: str, document_id: str) -> int:
    """The advisory lock key (signed 64 bits) of one document of one collection."""
    digest = hashlib.sha256(f"{name}\x00{document_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _vec(values: list[float]) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in values) + "]"


@dataclass
class _Resolved:
    """A collection's registry row and the tables of the physical collection it names."""

    physical: str
    dimension: int
    tokenizer: str
    chunks: sql.Identifier
    terms: sql.Identifier
    originals: sql.Identifier


def _tables_of(physical: str) -> tuple[sql.Identifier, sql.Identifier, sql.Identifier]:
    return (
        sql.Identifier(table_name(_CHUNKS, physical)),
        sql.Identifier(table_name(_TERMS, physical)),
        sql.Identifier(table_name(_ORIGINALS, physical)),
    )


def _create_originals(conn: psycopg.Connection[Any], physical: str) -> None:
    """The originals table of a physical collection (documents' texts as ingested, one row per
    document, replaced in the transaction that replaces its chunks)."""
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (document_id text PRIMARY KEY, version_id text,"
            " content_hash text NOT NULL, text_hash text NOT NULL, metadata jsonb NOT NULL,"
            " text text NOT NULL)"
        ).format(_tables_of(physical)[2])
    )


class PgVectorStore(VectorStore):
    kind = "pgvector"

    def __init__(self, dsn: str, pool_size: int = 8) -> None:
        self.dsn = dsn
        self._pool: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._pool_size = pool_size
        self._ready = False

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            try:
                conn = psycopg.connect(self.dsn, connect_timeout=5)
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError(f"PostgreSQL is unreachable: {exc}") from exc
        try:
            if not self._ready:
                self._bootstrap(conn)
            with conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            conn.close()
            raise StoreUnavailableError(f"PostgreSQL is unreachable: {exc}") from exc
        finally:
            if not conn.closed:
                if self._pool.qsize() < self._pool_size:
                    self._pool.put(conn)
                else:
                    conn.close()

    def _bootstrap(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, dimension int NOT NULL)"
                ).format(sql.Identifier(_REGISTRY))
            )
            # The BM25 tokenizer that filled each collection's terms table; NULL: a collection
            # made before the column existed (rag_pipeline 0.2.0 and earlier), LEGACY_TOKENIZER.
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS sparse_tokenizer text").format(
                    sql.Identifier(_REGISTRY)
                )
            )
            # rag_pipeline 0.3.0's registry has no chunker column: its collections record none.
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS chunker jsonb").format(
                    sql.Identifier(_REGISTRY)
                )
            )
            # The physical collection a name names (NULL: the one of its own name); set by a
            # re-index, in the transaction that switches to the new build (rag_pipeline 0.5.0).
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS physical text").format(
                    sql.Identifier(_REGISTRY)
                )
            )
            self._rename_truncated_tables(conn)
            # Collections made before 0.5.0 get an (empty) originals table: their documents'
            # texts were not kept, new writes keep them.
            rows = conn.execute(
                sql.SQL("SELECT coalesce(physical, name) FROM {}").format(sql.Identifier(_REGISTRY))
            ).fetchall()
            for (physical,) in rows:
                if _table_exists(conn, table_name(_CHUNKS, physical)):
                    _create_originals(conn, physical)
        self._ready = True

    @staticmethod
    def _rename_truncated_tables(conn: psycopg.Connection[Any]) -> None:
        """Give a long-named collection created by rag_pipeline 0.2.0 or earlier (tables named
        by PostgreSQL's truncation) the tables table_name() names."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_REGISTRY,))
        names = conn.execute(sql.SQL("SELECT name FROM {}").format(sql.Identifier(_REGISTRY)))
        for (name,) in names.fetchall():
            for prefix in (_CHUNKS, _TERMS):
                old, new = _truncated(prefix, name), table_name(prefix, name)
                if old == new:
                    continue
                if _table_exists(conn, old) and not _table_exists(conn, new):
                    conn.execute(
                        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                            sql.Identifier(old), sql.Identifier(new)
                        )
                    )

    # -- the one place a collection name is resolved -----------------------------------------

    @staticmethod
    def _lookup(conn: psycopg.Connection[Any], name: str) -> _Resolved | None:
        """``name``'s registry row, locked FOR SHARE until the transaction ends: a re-index's
        switch (an UPDATE of that row, then DROP of the old tables) waits for this transaction,
        and a transaction that starts later reads the new row; so a query never resolves a
        name to tables that are dropped under it."""
        row = conn.execute(
            sql.SQL(
                "SELECT coalesce(physical, name), dimension, sparse_tokenizer FROM {}"
                " WHERE name = %s FOR SHARE"
            ).format(sql.Identifier(_REGISTRY)),
            (name,),
        ).fetchone()
        if row is None:
            return None
        return _Resolved(str(row[0]), int(row[1]), row[2] or LEGACY_TOKENIZER, *_tables_of(row[0]))

    def _resolve(self, conn: psycopg.Connection[Any], name: str) -> _Resolved:
        found = self._lookup(conn, name)
        if found is None:
            raise CollectionNotFoundError(f"collection {name!r} not found")
        return found

    def physical_name(self, name: str) -> str:
        with self._conn() as conn:
            return self._resolve(conn, name).physical

    def ping(self) -> None:
        with self._conn() as conn:
            conn.execute("SELECT 1")

    def collection_exists(self, name: str) -> bool:
        with self._conn() as conn:
            row = conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE name = %s").format(sql.Identifier(_REGISTRY)),
                (name,),
            ).fetchone()
        return row is not None

    def _stored_layout(self, conn: psycopg.Connection[Any], name: str) -> tuple[int, str] | None:
        """(dimension, sparse tokenizer) of collection ``name``; None: no such collection."""
        found = self._lookup(conn, name)
        return None if found is None else (found.dimension, found.tokenizer)

    @staticmethod
    def _check_dimension(name: str, stored: tuple[int, str] | None, dimension: int) -> bool:
        if stored is None:
            return False
        layout = collection_layout(dimension, server=True)
        if stored[0] != dimension:
            raise mismatch(
                name,
                f"stores vectors of size {stored[0]}, but the embedding model produces "
                f"{dimension}-dimensional dense vectors",
                layout,
            )
        if stored[1] != TOKENIZER:
            raise tokenizer_mismatch(name, stored[1], layout)
        return True

    def check_collection(self, name: str, dimension: int) -> bool:
        with self._conn() as conn:
            return self._check_dimension(name, self._stored_layout(conn, name), dimension)

    def ensure_collection(
        self, name: str, dimension: int, chunker: dict[str, Any] | None = None
    ) -> bool:
        chunks, terms, _ = _tables_of(name)
        with self._conn() as conn:
            # Serialise concurrent creators of the same collection.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
            if self._check_dimension(name, self._stored_layout(conn, name), dimension):
                return False
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (name, dimension, sparse_tokenizer, chunker)"
                    " VALUES (%s, %s, %s, %s)"
                ).format(sql.Identifier(_REGISTRY)),
                (name, dimension, TOKENIZER, Jsonb(chunker) if chunker else None),
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id uuid PRIMARY KEY, document_id text NOT NULL,"
                    " content_hash text NOT NULL, chunks_total int NOT NULL,"
                    " payload jsonb NOT NULL,"
                    " embedding vector({}) NOT NULL)"
                ).format(chunks, sql.Literal(dimension))
            )
            conn.execute(sql.SQL("CREATE INDEX ON {} (document_id)").format(chunks))
            conn.execute(
                sql.SQL("CREATE INDEX ON {} USING hnsw (embedding vector_cosine_ops)").format(
                    chunks
                )
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (point_id uuid NOT NULL REFERENCES {} (id) ON DELETE CASCADE,"
                    " term bigint NOT NULL, weight real NOT NULL)"
                ).format(terms, chunks)
            )
            conn.execute(sql.SQL("CREATE INDEX ON {} (term)").format(terms))
            conn.execute(sql.SQL("CREATE INDEX ON {} (point_id)").format(terms))
            _create_originals(conn, name)
            return True

    def list_collections(self) -> list[tuple[str, int]]:
        with self._conn() as conn:
            names = [
                r[0]
                for r in conn.execute(
                    sql.SQL("SELECT name FROM {} ORDER BY name").format(sql.Identifier(_REGISTRY))
                )
                if not is_staging(r[0])  # re-index builds
            ]
            out = []
            for n in names:
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(self._resolve(conn, n).chunks)
                ).fetchone()
                out.append((n, int(row[0]) if row else 0))
            return out

    @staticmethod
    def _drop(conn: psycopg.Connection[Any], physical: str) -> None:
        chunks, terms, originals = _tables_of(physical)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}, {}").format(terms, chunks, originals))

    def delete_collection(self, name: str) -> bool:
        with self._conn() as conn:
            found = self._lookup(conn, name)
            deleted = conn.execute(
                sql.SQL("DELETE FROM {} WHERE name = %s").format(sql.Identifier(_REGISTRY)), (name,)
            ).rowcount
            self._drop(conn, found.physical if found else name)
            return bool(deleted)

    @staticmethod
    def _insert(
        conn: psycopg.Connection[Any],
        chunks: sql.Identifier,
        terms: sql.Identifier,
        points: list[ChunkPoint],
    ) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL(
                    "INSERT INTO {} (id, document_id, content_hash, chunks_total, payload,"
                    " embedding) VALUES (%s, %s, %s, %s, %s, %s::vector)"
                ).format(chunks),
                [
                    (
                        p.id,
                        p.payload["document_id"],
                        p.payload["content_hash"],
                        p.payload["chunks_total"],
                        Jsonb(p.payload),
                        _vec(p.dense),
                    )
                    for p in points
                ],
            )
            with cur.copy(
                sql.SQL("COPY {} (point_id, term, weight) FROM STDIN").format(terms)
            ) as copy:
                for p in points:
                    for term, weight in zip(p.sparse.indices, p.sparse.values, strict=True):
                        copy.write_row((p.id, term, weight))

    def stored_documents(self, name: str, document_ids: list[str]) -> dict[str, StoredDocument]:
        if not document_ids:
            return {}
        with self._conn() as conn:
            found = self._resolve(conn, name)
            chunks = found.chunks
            rows = conn.execute(
                sql.SQL(
                    "SELECT id, document_id, content_hash, chunks_total, payload->>'text_hash',"
                    " payload->>'version_id' FROM {} WHERE document_id = ANY(%s)"
                ).format(chunks),
                (document_ids,),
            ).fetchall()
            kept = {
                (r[0], r[1])
                for r in conn.execute(
                    sql.SQL(
                        "SELECT document_id, content_hash FROM {} WHERE document_id = ANY(%s)"
                    ).format(found.originals),
                    (document_ids,),
                )
            }
        grouped: dict[str, list[ExistingChunk]] = {}
        for r in rows:
            grouped.setdefault(r[1], []).append(
                ExistingChunk(str(r[0]), r[1], r[2], int(r[3]), r[4], r[5])
            )
        out = {doc_id: summarise(doc_id, have) for doc_id, have in grouped.items()}
        for doc_id, state in out.items():
            versioned = any(c.version_id for c in grouped[doc_id])
            state.original_missing = versioned and (doc_id, state.content_hash) not in kept
        return out

    def write_versions(self, name: str, versions: list[DocumentVersion], batch_size: int) -> None:
        # Whole documents per transaction, about batch_size points each: every document is
        # replaced atomically, with fewer commits than one transaction per document.
        groups: list[list[DocumentVersion]] = [[]]
        size = 0
        for v in versions:
            if groups[-1] and size + len(v.points) > batch_size:
                groups.append([])
                size = 0
            groups[-1].append(v)
            size += len(v.points)
        for group in groups:
            if not group:
                continue
            # In one order everywhere, so two transactions never wait for each other's locks.
            keys = sorted({_lock_key(name, v.document_id) for v in group})
            with self._conn() as conn:
                found = self._resolve(conn, name)
                conn.execute(
                    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k",
                    (keys,),
                )
                ids = [v.document_id for v in group]
                for table in (found.chunks, found.originals):
                    conn.execute(
                        sql.SQL("DELETE FROM {} WHERE document_id = ANY(%s)").format(table), (ids,)
                    )
                self._insert(conn, found.chunks, found.terms, [p for v in group for p in v.points])
                # The originals in the same transaction as their chunks.
                with conn.cursor() as cur:
                    cur.executemany(
                        sql.SQL(
                            "INSERT INTO {} (document_id, version_id, content_hash, text_hash,"
                            " metadata, text) VALUES (%s, %s, %s, %s, %s, %s)"
                        ).format(found.originals),
                        [
                            (
                                v.document_id,
                                v.version_id,
                                v.content_hash,
                                v.text_hash,
                                Jsonb(v.metadata),
                                v.text,
                            )
                            for v in group
                            if v.text is not None
                        ],
                    )

    def delete_document(self, name: str, document_id: str) -> int:
        with self._conn() as conn:
            found = self._resolve(conn, name)
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(name, document_id),))
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE document_id = %s").format(found.originals),
                (document_id,),
            )
            return conn.execute(
                sql.SQL("DELETE FROM {} WHERE document_id = %s").format(found.chunks),
                (document_id,),
            ).rowcount

    def get_chunker(self, name: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            self._resolve(conn, name)
            row = conn.execute(
                sql.SQL("SELECT chunker FROM {} WHERE name = %s").format(sql.Identifier(_REGISTRY)),
                (name,),
            ).fetchone()
        return dict(row[0]) if row and isinstance(row[0], dict) else None

    def set_chunker(self, name: str, chunker: dict[str, Any]) -> None:
        with self._conn() as conn:
            conn.execute(
                sql.SQL("UPDATE {} SET chunker = %s WHERE name = %s").format(
                    sql.Identifier(_REGISTRY)
                ),
                (Jsonb(chunker), name),
            )

    def has_chunks(self, name: str) -> bool:
        with self._conn() as conn:
            row = conn.execute(
                sql.SQL("SELECT 1 FROM {} LIMIT 1").format(self._resolve(conn, name).chunks)
            ).fetchone()
        return row is not None

    def chunk_range(
        self, name: str, document_id: str, version_id: str | None, first: int, last: int
    ) -> list[dict[str, Any]]:
        with self._conn() as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT payload FROM {} WHERE document_id = %s"
                    " AND (payload->>'chunk_index')::int BETWEEN %s AND %s"
                    " AND payload->>'version_id' IS NOT DISTINCT FROM %s"
                    " ORDER BY (payload->>'chunk_index')::int"
                ).format(self._resolve(conn, name).chunks),
                (document_id, first, last, version_id),
            ).fetchall()
        return [dict(r[0]) for r in rows]

    def search_dense(self, name: str, vector: list[float], limit: int) -> list[Hit]:
        with self._conn() as conn:
            chunks = self._resolve(conn, name).chunks
            # HNSW returns at most ef_search rows: widen it to the requested depth.
            conn.execute(
                sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(max(limit, 40)))
            )
            rows = conn.execute(
                sql.SQL(
                    "SELECT id, payload, 1 - (embedding <=> %s::vector) AS score FROM {}"
                    " ORDER BY embedding <=> %s::vector LIMIT %s"
                ).format(chunks),
                (_vec(vector), _vec(vector), limit),
            ).fetchall()
        return [Hit(str(r[0]), float(r[2]), r[1]) for r in rows]

    def search_sparse(self, name: str, vector: SparseVector, limit: int) -> list[Hit]:
        if not vector.indices:
            return []
        query = sql.SQL(
            """
            WITH q(term, qw) AS (SELECT * FROM unnest(%s::bigint[], %s::real[])),
            n AS (SELECT count(*)::float8 AS n FROM {chunks} c
                  WHERE EXISTS (SELECT 1 FROM {terms} t WHERE t.point_id = c.id)),
            df AS (SELECT t.term, count(*)::float8 AS df FROM {terms} t JOIN q USING (term)
                   GROUP BY t.term),
            s AS (SELECT t.point_id,
                         sum(t.weight * q.qw * ln((n.n - df.df + 0.5) / (df.df + 0.5) + 1)) AS score
                  FROM {terms} t JOIN q USING (term) JOIN df USING (term) CROSS JOIN n
                  GROUP BY t.point_id ORDER BY score DESC LIMIT %s)
            SELECT c.id, c.payload, s.score FROM s JOIN {chunks} c ON c.id = s.point_id
            ORDER BY s.score DESC
            """
        )
        with self._conn() as conn:
            found = self._resolve(conn, name)
            if found.tokenizer != TOKENIZER:
                layout = collection_layout(found.dimension, server=True)
                raise tokenizer_mismatch(name, found.tokenizer, layout)
            rows = conn.execute(
                query.format(chunks=found.chunks, terms=found.terms),
                (vector.indices, vector.values, limit),
            ).fetchall()
        return [Hit(str(r[0]), float(r[2]), r[1]) for r in rows]

    def list_documents(self, name: str) -> list[DocumentInfo]:
        with self._conn() as conn:
            chunks = self._resolve(conn, name).chunks
            rows = conn.execute(
                sql.SQL(
                    "SELECT document_id, min(content_hash), count(*),"
                    " (array_agg(payload->'metadata'))[1],"
                    # NULL when any chunk predates text_hash (rag_pipeline < 0.3.0)
                    " CASE WHEN bool_and(payload ? 'text_hash')"
                    " THEN min(payload->>'text_hash') END"
                    " FROM {} GROUP BY document_id ORDER BY document_id"
                ).format(chunks)
            ).fetchall()
        return [
            DocumentInfo(
                r[0],
                r[1],
                int(r[2]),
                r[3] if isinstance(r[3], dict) else json.loads(r[3] or "{}"),
                r[4],
            )
            for r in rows
        ]

    # -- originals and re-index ---------------------------------------------------------------

    def missing_originals(self, name: str) -> list[str]:
        with self._conn() as conn:
            found = self._resolve(conn, name)
            rows = conn.execute(
                sql.SQL(
                    "SELECT DISTINCT c.document_id FROM {} c LEFT JOIN {} o"
                    " ON o.document_id = c.document_id AND o.content_hash = c.content_hash"
                    " WHERE o.document_id IS NULL ORDER BY 1"
                ).format(found.chunks, found.originals)
            ).fetchall()
        return [r[0] for r in rows]

    def originals(
        self, name: str, document_ids: list[str] | None = None, page: int = 64
    ) -> Iterator[list[Original]]:
        after = ""
        while True:
            with self._conn() as conn:
                found = self._resolve(conn, name)
                rows = conn.execute(
                    sql.SQL(
                        "SELECT document_id, version_id, content_hash, text_hash, metadata, text"
                        " FROM {} WHERE document_id > %s"
                        " AND (%s::text[] IS NULL OR document_id = ANY(%s::text[]))"
                        " ORDER BY document_id LIMIT %s"
                    ).format(found.originals),
                    (after, document_ids, document_ids, page),
                ).fetchall()
            if rows:
                yield [Original(r[0], r[1] or "", r[2], r[3], dict(r[4]), r[5]) for r in rows]
            if len(rows) < page:
                return
            after = rows[-1][0]

    def create_staging(self, name: str, dimension: int, chunker: dict[str, Any]) -> str:
        staging = staging_name(name)
        self.ensure_collection(staging, dimension, chunker)
        return staging

    def switch(self, name: str, staging: str) -> None:
        registry = sql.Identifier(_REGISTRY)
        # One transaction: the name's row takes the build's layout and tables, the build's own
        # row goes, the old tables are dropped. The UPDATE waits for transactions that
        # resolved the name (FOR SHARE) to end; later ones read the new row.
        with self._conn() as conn:
            old = conn.execute(
                sql.SQL(
                    "SELECT coalesce(physical, name) FROM {} WHERE name = %s FOR UPDATE"
                ).format(registry),
                (name,),
            ).fetchone()
            if old is None:
                raise CollectionNotFoundError(f"collection {name!r} not found")
            conn.execute(
                sql.SQL(
                    "UPDATE {r} AS n SET physical = %s, dimension = s.dimension,"
                    " sparse_tokenizer = s.sparse_tokenizer, chunker = s.chunker"
                    " FROM {r} AS s WHERE n.name = %s AND s.name = %s"
                ).format(r=registry),
                (staging, name, staging),
            )
            conn.execute(sql.SQL("DELETE FROM {} WHERE name = %s").format(registry), (staging,))
            self._drop(conn, old[0])

    def drop_staging(self, staging: str) -> None:
        with self._conn() as conn:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE name = %s").format(sql.Identifier(_REGISTRY)),
                (staging,),
            )
            self._drop(conn, staging)

    def lock_reindex(self, name: str) -> Callable[[], None] | None:
        # A session-level advisory lock on a connection of its own, held for the whole job:
        # replicas sharing the database refuse a second re-index too, and a process that dies
        # gives the lock back with its connection.
        try:
            conn = psycopg.connect(self.dsn, connect_timeout=5, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"PostgreSQL is unreachable: {exc}") from exc
        key = _lock_key(name, "\x00reindex")
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not (row and row[0]):
            conn.close()
            return None

        def release() -> None:
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            conn.close()

        return release

    def leftover_staging(self, name: str) -> list[str]:
        with self._conn() as conn:
            rows = conn.execute(
                sql.SQL("SELECT name FROM {} WHERE starts_with(name, %s)").format(
                    sql.Identifier(_REGISTRY)
                ),
                (name + ".",),
            ).fetchall()
        return sorted(r[0] for r in rows if is_staging(r[0]))

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return
