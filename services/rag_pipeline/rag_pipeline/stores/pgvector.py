"""PostgreSQL + pgvector store (psycopg 3).

pgvector 0.6 has no sparse vector type, so BM25 lives in a terms table (point, term id, BM25
document weight); IDF is computed in SQL at query time with the same formula Qdrant's ``idf``
modifier uses, so both stores rank identically.
"""

from __future__ import annotations

import contextlib
import json
import queue
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from rag_pipeline.layout import collection_layout
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
)

_REGISTRY = "rag_collections"


def _vec(values: list[float]) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in values) + "]"


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
        self._ready = True

    @staticmethod
    def _tables(name: str) -> tuple[sql.Identifier, sql.Identifier]:
        return sql.Identifier(f"rag_chunks_{name}"), sql.Identifier(f"rag_terms_{name}")

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

    def _require(self, conn: psycopg.Connection[Any], name: str) -> None:
        row = conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE name = %s").format(sql.Identifier(_REGISTRY)), (name,)
        ).fetchone()
        if row is None:
            raise CollectionNotFoundError(f"collection {name!r} not found")

    def _stored_dimension(self, conn: psycopg.Connection[Any], name: str) -> int | None:
        row = conn.execute(
            sql.SQL("SELECT dimension FROM {} WHERE name = %s").format(sql.Identifier(_REGISTRY)),
            (name,),
        ).fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def _check_dimension(name: str, stored: int | None, dimension: int) -> bool:
        if stored is not None and stored != dimension:
            raise mismatch(
                name,
                f"stores vectors of size {stored}, but the embedding model produces "
                f"{dimension}-dimensional dense vectors",
                collection_layout(dimension, server=True),
            )
        return stored is not None

    def check_collection(self, name: str, dimension: int) -> bool:
        with self._conn() as conn:
            return self._check_dimension(name, self._stored_dimension(conn, name), dimension)

    def ensure_collection(self, name: str, dimension: int) -> bool:
        chunks, terms = self._tables(name)
        with self._conn() as conn:
            # Serialise concurrent creators of the same collection.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
            if self._check_dimension(name, self._stored_dimension(conn, name), dimension):
                return False
            conn.execute(
                sql.SQL("INSERT INTO {} (name, dimension) VALUES (%s, %s)").format(
                    sql.Identifier(_REGISTRY)
                ),
                (name, dimension),
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
            return True

    def list_collections(self) -> list[tuple[str, int]]:
        with self._conn() as conn:
            names = [
                r[0]
                for r in conn.execute(
                    sql.SQL("SELECT name FROM {} ORDER BY name").format(sql.Identifier(_REGISTRY))
                )
            ]
            out = []
            for n in names:
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(self._tables(n)[0])
                ).fetchone()
                out.append((n, int(row[0]) if row else 0))
            return out

    def delete_collection(self, name: str) -> bool:
        chunks, terms = self._tables(name)
        with self._conn() as conn:
            deleted = conn.execute(
                sql.SQL("DELETE FROM {} WHERE name = %s").format(sql.Identifier(_REGISTRY)), (name,)
            ).rowcount
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}").format(terms, chunks))
            return bool(deleted)

    def upsert(self, name: str, points: list[ChunkPoint]) -> None:
        if not points:
            return
        chunks, terms = self._tables(name)
        ids = [p.id for p in points]
        with self._conn() as conn:
            self._require(conn, name)
            # Re-upserting an id replaces it: drop its old terms first (they cascade on delete).
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s::uuid[])").format(chunks), (ids,)
            )
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

    def existing_chunks(self, name: str, document_ids: list[str]) -> list[ExistingChunk]:
        if not document_ids:
            return []
        chunks, _ = self._tables(name)
        with self._conn() as conn:
            self._require(conn, name)
            rows = conn.execute(
                sql.SQL(
                    "SELECT id, document_id, content_hash, chunks_total, payload->>'text_hash'"
                    " FROM {} WHERE document_id = ANY(%s)"
                ).format(chunks),
                (document_ids,),
            ).fetchall()
        return [ExistingChunk(str(r[0]), r[1], r[2], int(r[3]), r[4]) for r in rows]

    def delete_points(self, name: str, ids: list[str]) -> None:
        if not ids:
            return
        chunks, _ = self._tables(name)
        with self._conn() as conn:
            self._require(conn, name)
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s::uuid[])").format(chunks), (ids,)
            )

    def delete_document(self, name: str, document_id: str) -> int:
        chunks, _ = self._tables(name)
        with self._conn() as conn:
            self._require(conn, name)
            return conn.execute(
                sql.SQL("DELETE FROM {} WHERE document_id = %s").format(chunks), (document_id,)
            ).rowcount

    def search_dense(self, name: str, vector: list[float], limit: int) -> list[Hit]:
        chunks, _ = self._tables(name)
        with self._conn() as conn:
            self._require(conn, name)
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
        chunks, terms = self._tables(name)
        query = sql.SQL(
            """
            WITH q(term, qw) AS (SELECT * FROM unnest(%s::bigint[], %s::real[])),
            n AS (SELECT count(*)::float8 AS n FROM {chunks}),
            df AS (SELECT t.term, count(*)::float8 AS df FROM {terms} t JOIN q USING (term)
                   GROUP BY t.term),
            s AS (SELECT t.point_id,
                         sum(t.weight * q.qw * ln((n.n - df.df + 0.5) / (df.df + 0.5) + 1)) AS score
                  FROM {terms} t JOIN q USING (term) JOIN df USING (term) CROSS JOIN n
                  GROUP BY t.point_id ORDER BY score DESC LIMIT %s)
            SELECT c.id, c.payload, s.score FROM s JOIN {chunks} c ON c.id = s.point_id
            ORDER BY s.score DESC
            """
        ).format(chunks=chunks, terms=terms)
        with self._conn() as conn:
            self._require(conn, name)
            rows = conn.execute(query, (vector.indices, vector.values, limit)).fetchall()
        return [Hit(str(r[0]), float(r[2]), r[1]) for r in rows]

    def list_documents(self, name: str) -> list[DocumentInfo]:
        chunks, _ = self._tables(name)
        with self._conn() as conn:
            self._require(conn, name)
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

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return
