"""Document writes are versioned, atomic and serialised, in both stores: concurrent writers of
one document over real HTTP, kill -9 of the service in the middle of a batch, and pgvector
collection names longer than PostgreSQL's identifiers."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

import rag_pipeline
from rag_pipeline.documents import content_hash
from rag_pipeline.embeddings import Embedder, LocalEmbedder
from rag_pipeline.main import create_app
from rag_pipeline.models import DocumentIn
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings
from rag_pipeline.stores import make_store
from tests.conftest import free_port
from tests.rag_pipeline.conftest import serve
from tests.servers import stop, wait_http

STORES = ["qdrant", "pgvector"]
# One sentence of text() per chunk: 17-19 tokens as the chunker estimates them for an
# embedder without a tokenizer (these tests' embedders), and two do not fit.
CHUNK = {"chunk_size": 20, "chunk_overlap": 0}


class CachedEmbedder(Embedder):
    """The session's MiniLM, each text embedded once: these tests write the same chunk texts
    many times (versions differ in their metadata), and embedding is what takes time here."""

    name = "cached"

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner = inner
        self.scheduler = inner.scheduler  # the model's one scheduler, as the service shares it
        self.cache: dict[str, np.ndarray] = {}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def _encode(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            self.cache.update(zip(missing, self.inner._encode(missing), strict=True))
        return np.stack([self.cache[t] for t in texts]) if texts else self.inner._encode([])


@pytest.fixture(scope="module")
def cached(embedder: LocalEmbedder) -> CachedEmbedder:
    return CachedEmbedder(embedder)


@pytest.fixture
def open_pipeline(cached: CachedEmbedder) -> Iterator[Callable[..., Pipeline]]:
    """Pipelines with the cached embedder, closed at the end."""
    made: list[Pipeline] = []

    def _open(**kwargs: Any) -> Pipeline:
        settings = Settings(**kwargs)
        made.append(Pipeline(settings, make_store(settings), embedder=cached))
        return made[-1]

    yield _open
    for p in made:
        p.close()


def store_settings(store: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if store == "pgvector":
        return {"vector_store": "pgvector", "pgvector_dsn": request.getfixturevalue("pg_dsn")}
    return {}


def text(mark: str, chunks: int) -> str:
    """``chunks`` chunks (sentences of 6 words), each with the word "common" and ``mark``."""
    return " ".join(f"common {mark}c{j} alpha beta gamma delta." for j in range(chunks))


def stored_versions(pipeline: Pipeline, collection: str, document_id: str) -> Counter[str]:
    """version_id -> number of chunks stored for the document, visible or not."""
    store: Any = pipeline.store
    if pipeline.settings.vector_store == "pgvector":
        from psycopg import connect

        from rag_pipeline.stores.pgvector import table_name

        with connect(pipeline.settings.pgvector_dsn or "") as conn:
            rows = conn.execute(
                f"SELECT payload->>'version_id' FROM \"{table_name('rag_chunks_', collection)}\""
                " WHERE document_id = %s",
                (document_id,),
            ).fetchall()
        return Counter(r[0] for r in rows)
    from qdrant_client import models

    flt = models.Filter(
        must=[models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))]
    )
    records = store.client.scroll(collection, scroll_filter=flt, limit=10_000)[0]
    return Counter(
        r.payload.get("version_id") for r in records if "current_version_id" not in r.payload
    )


def visible_chunks(pipeline: Pipeline, collection: str) -> dict[str, list[dict[str, Any]]]:
    """document_id -> payloads of the chunks of the version a sparse search finds (BM25
    indexes each document once, on its first chunk, and every text has the word "common");
    a dense search (approximate in pgvector) finds no chunk of any other version."""
    store = pipeline.store
    limit = 1000  # above every collection here; pgvector's hnsw.ef_search stops at 1000
    sparse = store.search_sparse(collection, pipeline.bm25.encode_query("common"), limit)
    dense = store.search_dense(collection, pipeline.embedder.embed_query("common").tolist(), limit)
    assert len(sparse) < limit
    assert all(h.payload["chunk_index"] == 0 for h in sparse)
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for hit in sparse:
        doc, version = hit.payload["document_id"], hit.payload.get("version_id")
        assert doc not in by_doc, f"{doc}: two versions found by BM25"
        by_doc[doc] = store.chunk_range(collection, doc, version, 0, limit)

    def key(p: dict[str, Any]) -> tuple[str, Any, int]:
        return (p["document_id"], p.get("version_id"), p["chunk_index"])

    assert {key(h.payload) for h in dense} <= {key(p) for ps in by_doc.values() for p in ps}
    return by_doc


def assert_whole_versions(
    pipeline: Pipeline, collection: str, known: dict[str, dict[str, int]], context: str
) -> dict[str, str]:
    """Every listed and every searchable document is one whole version it was written with;
    returns document_id -> content_hash."""
    listed = {d.document_id: d for d in pipeline.list_documents(collection)}
    for doc_id, d in listed.items():
        assert d.content_hash in known[doc_id], f"{context}: {doc_id} has an unknown version"
        assert d.chunks == known[doc_id][d.content_hash], f"{context}: {doc_id} is partial"
    visible = visible_chunks(pipeline, collection)
    assert set(visible) == set(listed), context
    for doc_id, payloads in visible.items():
        hashes = {p["content_hash"] for p in payloads}
        assert hashes == {listed[doc_id].content_hash}, f"{context}: {doc_id} mixes {hashes}"
        indexes = sorted(p["chunk_index"] for p in payloads)
        assert indexes == list(range(listed[doc_id].chunks)), f"{context}: {doc_id} {indexes}"
    return {doc_id: d.content_hash for doc_id, d in listed.items()}


# -- concurrent writers of one document ------------------------------------------------------

WRITERS = 16
ROUNDS = 3


@pytest.mark.parametrize("store", STORES)
def test_concurrent_writers_of_one_document(
    store: str, open_pipeline: Callable[..., Pipeline], request: pytest.FixtureRequest
) -> None:
    """16 clients POST /ingest with one document_id and different texts (1 to 3 chunks), over
    several rounds: one whole version remains, listed and cited alone."""
    collection = f"race_{store}"
    pipeline = open_pipeline(log_level="WARNING", **CHUNK, **store_settings(store, request))
    known: dict[str, dict[str, int]] = {"doc": {}}
    with serve(create_app(pipeline=pipeline)) as url:
        for round_ in range(ROUNDS):
            bodies = [
                {
                    "document_id": "doc",
                    "collection": collection,
                    "text": text(f"w{w}r{round_}", 1 + w % 3),
                }
                for w in range(WRITERS)
            ]
            for w, b in enumerate(bodies):
                known["doc"][content_hash(b["text"])] = 1 + w % 3

            async def post_all(bodies: list[dict[str, Any]] = bodies) -> list[httpx.Response]:
                async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                    return await asyncio.gather(*(client.post("/ingest", json=b) for b in bodies))

            responses = asyncio.run(post_all())
            assert [r.status_code for r in responses] == [200] * WRITERS
            docs = httpx.get(f"{url}/documents", params={"collection": collection}).json()
            ((doc),) = docs["documents"]
            current = assert_whole_versions(pipeline, collection, known, f"round {round_}")
            assert current["doc"] == doc["content_hash"]
            # Cited by /query: one version, all of its chunks.
            q = httpx.post(
                f"{url}/query",
                json={
                    "query": "common alpha",
                    "collection": collection,
                    "strategy": "hybrid",
                    "top_k": 50,
                    "top_n": 50,
                    "generate": False,
                    "neighbours": 3,
                },
            ).json()
            # One source per document; its context is its version's chunks, all of them.
            ((source),) = q["sources"]
            sentences = source["context"].split(".")[:-1]
            marks = {t.split()[1].rsplit("c", 1)[0] for t in sentences}  # writer
            assert len(marks) == 1 and len(sentences) == doc["chunks"], q["sources"]
            # Nothing else is stored: earlier versions are deleted, not just hidden.
            assert list(stored_versions(pipeline, collection, "doc").values()) == [doc["chunks"]]


# -- kill -9 in the middle of a batch --------------------------------------------------------

UPDATED = 60  # documents every batch rewrites
CREATED = 20  # new documents in every batch
KILLS = 3


def chunks_of(i: int) -> int:
    return 1 + i % 2


@pytest.fixture(scope="module")
def embeddings_url(cached: CachedEmbedder) -> Iterator[str]:
    """The session's MiniLM behind an OpenAI-compatible /v1/embeddings on loopback, so the
    service processes this module starts and kills need not load the model themselves."""
    app = FastAPI()

    @app.post("/v1/embeddings")
    def embeddings(body: dict[str, Any]) -> dict[str, Any]:
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        vectors = cached.embed(texts)
        b64 = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                if b64
                else v.tolist(),
            }
            for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        return {"object": "list", "model": body["model"], "data": data, "usage": usage}

    with serve(app) as url:
        yield f"{url}/v1"


@pytest.mark.slow
@pytest.mark.parametrize("store", STORES)
def test_kill_during_batch_leaves_whole_versions(
    store: str,
    open_pipeline: Callable[..., Pipeline],
    embeddings_url: str,
    request: pytest.FixtureRequest,
) -> None:
    """The service is SIGKILLed at random store writes of an 80-document batch (60 updates,
    20 creations), once in each third of the batch's writes; after each kill every document
    is one whole version (the old or the new one, never a part or both), in listings and in
    searches, and the next process's write replaces crash leftovers."""
    seed = int(os.environ.get("RAG_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    collection = f"crash_{store}"
    settings = {**CHUNK, "upsert_batch_size": 8, **store_settings(store, request)}
    if store == "qdrant":
        # tmpfs where there is one: embedded Qdrant commits every point to SQLite, and a
        # process kill (unlike a power cut) loses nothing the kernel already has.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        settings["qdrant_path"] = folder = tempfile.mkdtemp(prefix="rag-crash-", dir=shm)
        request.addfinalizer(lambda: shutil.rmtree(folder, ignore_errors=True))
    updated = [f"doc-{i}" for i in range(UPDATED)]
    known: dict[str, dict[str, int]] = {}

    def batch(version: int) -> list[DocumentIn]:
        """Version ``version`` of every document: same texts, new metadata."""
        docs = [(d, i) for i, d in enumerate(updated)]
        docs += [(f"new{version}-{j}", UPDATED + j) for j in range(CREATED)]
        out = []
        for doc_id, i in docs:
            t, meta = text(f"item{i}", chunks_of(i)), {"v": version}
            known.setdefault(doc_id, {})[content_hash(t, meta)] = chunks_of(i)
            out.append(DocumentIn(document_id=doc_id, text=t, metadata=meta))
        return out

    with open_pipeline(**settings) as pipeline:  # version 0, in process
        assert pipeline.ingest_batch(batch(0)[:UPDATED], collection).created == UPDATED
    new_points = sum(chunks_of(i) for i in range(UPDATED)) + sum(
        chunks_of(j) for j in range(CREATED)
    )
    if store == "qdrant":  # writes: new chunks, heads, then the replaced chunks deleted
        writes = new_points + UPDATED + CREATED + sum(chunks_of(i) for i in range(UPDATED))
    else:  # four statements per transaction of whole documents, about 8 points each
        writes = 4 * (new_points // 8)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(rag_pipeline.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
        "EMBEDDING_BACKEND": "openai",
        "EMBEDDING_URL": embeddings_url,
        "EMBEDDING_MODEL": "minilm",
        "LOG_LEVEL": "WARNING",
        **{k.upper(): str(v) for k, v in settings.items()},
    }
    script = Path(__file__).with_name("crash_service.py")
    for kill in range(KILLS):
        version = kill + 1
        crash_at = rng.randint(kill * writes // KILLS + 1, (kill + 1) * writes // KILLS)
        context = f"seed {seed}, kill {kill} at write {crash_at} of about {writes}"
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(script), str(port)],
            env={**env, "CRASH_AT": str(crash_at)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/health", proc, 60)
            body = {
                "collection": collection,
                "documents": [d.model_dump() for d in batch(version)],
            }
            with pytest.raises(httpx.TransportError):
                httpx.post(f"http://127.0.0.1:{port}/ingest/batch", json=body, timeout=120)
            assert proc.wait(30) == -9, context
        finally:
            if proc.poll() is None:
                stop(proc)
        with open_pipeline(**settings) as pipeline:  # the service restarted
            current = assert_whole_versions(pipeline, collection, known, context)
            assert set(updated) <= set(current), context  # nothing that was whole is lost
    with open_pipeline(**settings) as pipeline:
        # A last write replaces every version the kills left, visible or not.
        final = batch(KILLS + 1)
        result = pipeline.ingest_batch(final, collection)
        assert result.unchanged == 0
        current = assert_whole_versions(pipeline, collection, known, f"seed {seed}, final")
        for d in final:
            assert current[d.document_id] == content_hash(d.text, d.metadata)
        for doc_id in updated:
            stored = stored_versions(pipeline, collection, doc_id)
            assert list(stored.values()) == [known[doc_id][current[doc_id]]], (doc_id, stored)


# -- pgvector: long collection names ---------------------------------------------------------


def test_pgvector_long_collection_names(
    make_pipeline: Callable[..., Pipeline], pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names that share their first 51+ characters get tables of their own (PostgreSQL cuts
    identifiers at 63 bytes), short names keep theirs, and a long-named collection made
    by rag_pipeline 0.2.0 (tables cut by PostgreSQL) is renamed in place when the store starts."""
    from psycopg import connect

    from rag_pipeline.stores import pgvector

    pg = {"vector_store": "pgvector", "pgvector_dsn": pg_dsn}
    long_a, long_b = "x" * 60 + "aaaa", "x" * 60 + "bbbb"
    pipeline = make_pipeline(**pg)
    for name in (long_a, long_b, "short"):
        assert pipeline.ensure_collection(name) is True
        pipeline.ingest_batch([DocumentIn(document_id=name[-4:], text=f"about {name}")], name)
    for name in (long_a, long_b, "short"):
        assert [d.document_id for d in pipeline.list_documents(name)] == [name[-4:]]
    assert dict(pipeline.list_collections())[long_b] == 1
    with connect(pg_dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert "rag_chunks_short" in tables
    assert pgvector.table_name("rag_chunks_", long_a) in tables
    assert all(len(t) <= 63 for t in tables)
    # A collection of rag_pipeline 0.2.0: its tables named prefix + name, cut by PostgreSQL.
    old = "y" * 64
    monkeypatch.setattr(pgvector, "table_name", lambda prefix, name: prefix + name)
    legacy = make_pipeline(**pg)
    legacy.ingest_batch([DocumentIn(document_id="kept", text="an old collection")], old)
    monkeypatch.undo()
    upgraded = make_pipeline(**pg)
    assert [d.document_id for d in upgraded.list_documents(old)] == ["kept"]
    assert pipeline.ensure_collection("y" * 52) is True  # its old table name is free again


def test_pgvector_writers_in_several_processes_take_turns(
    make_pipeline: Callable[..., Pipeline], pg_dsn: str
) -> None:
    """Writers of one document through separate stores (connection pools, as replicas have)
    and without the in-process lock: the advisory lock still leaves one whole version."""
    from rag_pipeline.documents import new_version_id, point_id
    from rag_pipeline.sparse import SparseVector
    from rag_pipeline.stores import ChunkPoint, DocumentVersion
    from rag_pipeline.stores.pgvector import PgVectorStore

    make_pipeline(vector_store="pgvector", pgvector_dsn=pg_dsn).ensure_collection("replicas")
    barrier = threading.Barrier(8)

    def write(writer: int) -> None:
        store, rng, mark = PgVectorStore(pg_dsn), np.random.default_rng(writer), f"w{writer}"
        try:
            barrier.wait()
            for _ in range(5):
                previous = store.stored_documents("replicas", ["doc"]).get("doc")
                version = new_version_id()
                points = [
                    ChunkPoint(
                        point_id("doc", version, i),
                        rng.standard_normal(384).tolist(),
                        SparseVector([writer, 1000 + i], [1.0, 1.0]),
                        {
                            "document_id": "doc",
                            "version_id": version,
                            "content_hash": mark,
                            "text_hash": mark,
                            "chunk_index": i,
                            "chunks_total": 1 + writer % 3,
                        },
                    )
                    for i in range(1 + writer % 3)
                ]
                v = DocumentVersion("doc", version, mark, mark, {}, points, previous)
                store.write_versions("replicas", [v], 8)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    pipeline = make_pipeline(vector_store="pgvector", pgvector_dsn=pg_dsn)
    (doc,) = pipeline.list_documents("replicas")
    stored = stored_versions(pipeline, "replicas", "doc")
    assert len(stored) == 1 and list(stored.values()) == [doc.chunks], stored
    assert doc.chunks == 1 + int(doc.content_hash[1:]) % 3


def test_qdrant_collection_of_0_3_0_keeps_working(open_pipeline: Callable[..., Pipeline]) -> None:
    """Chunks without version_id and no head (what 0.2.0 wrote) are a document's current
    version: listed, searched, unchanged on the same content; a changed write moves the
    document to versions and deletes them; deleting one removes all its chunks."""
    from qdrant_client import models

    from rag_pipeline.documents import head_id

    pipeline = open_pipeline(**CHUNK)
    docs = [DocumentIn(document_id=f"old{i}", text=text(f"old{i}", 1 + i)) for i in range(3)]
    pipeline.ingest_batch(docs, "v030")
    client: Any = pipeline.store.client  # type: ignore[attr-defined]
    client.delete("v030", points_selector=[head_id(d.document_id) for d in docs])
    ids = [str(p.id) for p in client.scroll("v030", limit=100)[0]]
    client.delete_payload("v030", keys=["version_id", "written_at"], points=ids)
    known = {d.document_id: {content_hash(d.text): 1 + i} for i, d in enumerate(docs)}
    assert_whole_versions(pipeline, "v030", known, "0.2.0 layout")
    assert pipeline.ingest_batch(docs, "v030").unchanged == 3
    changed = DocumentIn(document_id="old2", text=text("new2", 1))
    known["old2"][content_hash(changed.text)] = 1
    assert pipeline.ingest_batch([changed], "v030").updated == 1
    current = assert_whole_versions(pipeline, "v030", known, "after the update")
    assert current["old2"] == content_hash(changed.text)
    (version,) = stored_versions(pipeline, "v030", "old2")  # the 0.2.0 chunks are gone
    assert version is not None
    assert pipeline.delete_document("old1", "v030") == 2
    assert sorted(current) == ["old0", "old1", "old2"]
    assert [d.document_id for d in pipeline.list_documents("v030")] == ["old0", "old2"]
    flt = models.Filter(
        must=[models.FieldCondition(key="document_id", match=models.MatchValue(value="old1"))]
    )
    assert client.count("v030", count_filter=flt).count == 0
