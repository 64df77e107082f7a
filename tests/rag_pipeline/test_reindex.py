"""Originals kept with every version, and POST /collections/{name}/reindex: a new physical
collection built from them, switched to in one step while queries keep answering; a failure
midway leaves the old one serving and nothing behind; the 0.3.0 layout upgraded. Both stores,
real HTTP over loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from rag_pipeline.embeddings import EmbedderError, LocalEmbedder
from rag_pipeline.main import create_app
from rag_pipeline.models import DocumentIn
from rag_pipeline.pipeline import Pipeline, ReindexConflictError
from rag_pipeline.settings import Settings
from rag_pipeline.stores import make_store
from tests.rag_pipeline.conftest import API_KEY, AUTH, serve
from tests.rag_pipeline.test_integrity import CachedEmbedder, store_settings, text

STORES = ["qdrant", "pgvector"]
OLD = {"chunk_size": 20, "chunk_overlap": 0}  # one sentence of text() per chunk
NEW = {"chunk_size": 40, "chunk_overlap": 0}  # two: what a changed chunker re-cuts
DOCS = 12
# Every test embeds the same texts: embedded once per session (embedding is the slow part).
CACHE: dict[str, np.ndarray] = {}


class FailingEmbedder(CachedEmbedder):
    """Fails the ``fail_at``-th bulk embedding (a re-index's page); queries still work.
    ``hold``: a re-index's embedding waits for it (the job kept running; ``entered`` is set
    once it waits)."""

    def __init__(self, inner: LocalEmbedder, fail_at: int = 0) -> None:
        super().__init__(inner)
        self.cache = CACHE
        self.fail_at = fail_at
        self.calls = 0
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.pause = 0.0  # seconds each re-index page waits: the job takes a while

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if threading.current_thread().name.startswith("reindex-"):
            self.entered.set()
            self.hold.wait(60)
            time.sleep(self.pause)
        if self.fail_at and self.calls >= self.fail_at:
            raise EmbedderError("injected failure midway through the re-index")
        return super().embed(texts)


@pytest.fixture
def make(embedder: LocalEmbedder) -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def _make(emb: CachedEmbedder | None = None, **kwargs: Any) -> Pipeline:
        settings = Settings(api_key=API_KEY, **kwargs)
        made.append(
            Pipeline(settings, make_store(settings), embedder=emb or FailingEmbedder(embedder))
        )
        return made[-1]

    yield _make
    for p in made:
        p.close()


def seed_docs() -> list[DocumentIn]:
    return [
        DocumentIn(document_id=f"d{i:02}", text=text(f"m{i}", 1 + i % 3), metadata={"n": i})
        for i in range(DOCS)
    ]


def seed(
    make: Callable[..., Pipeline], store: str, request: pytest.FixtureRequest, tmp: str
) -> tuple[dict[str, Any], str]:
    """DOCS documents ingested with the OLD chunker; the settings to reopen the store and the
    collection's name. Qdrant: embedded on disk (one client per folder), closed again."""
    where = store_settings(store, request) or {"qdrant_path": tmp}
    name = f"re-{request.node.name.split('[')[0][-20:]}-{store}"
    old = make(**where, **OLD)
    assert old.ingest_batch(seed_docs(), name).created == DOCS
    old.close()
    return where, name


def physical(pipeline: Pipeline, name: str) -> list[str]:
    """The physical collections of ``name`` that exist (the one it names, and any debris)."""
    store: Any = pipeline.store
    if pipeline.settings.vector_store == "pgvector":
        from psycopg import connect

        with connect(pipeline.settings.pgvector_dsn or "") as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE %s",
                (f"rag\\_%\\_{name}%",),
            ).fetchall()
        return sorted(r[0] for r in rows)
    return sorted(
        c.name
        for c in store.client.get_collections().collections
        if c.name == name or c.name.startswith(name + ".")
    )


@dataclass
class Served:
    """A collection of DOCS documents ingested with the OLD chunker, served over HTTP by a
    pipeline with the chunker under test and an embedder of its own to hold or fail."""

    name: str
    where: dict[str, Any]  # the store settings, to open it again
    pipeline: Pipeline
    embedder: FailingEmbedder
    client: httpx.Client
    url: str
    before: list[str]  # the physical collections before any re-index


@pytest.fixture
def served(
    make: Callable[..., Pipeline],
    embedder: LocalEmbedder,
    store: str,
    request: pytest.FixtureRequest,
    tmp_path: Any,
) -> Iterator[Callable[..., Served]]:
    """``served(chunker, fail_at=0, **settings)``: seed the test's collection in ``store``
    and serve it with a pipeline of ``chunker`` whose embedder fails its ``fail_at``-th
    embedding (0: never)."""
    with ExitStack() as stack:

        def _start(chunker: dict[str, int], fail_at: int = 0, **settings: Any) -> Served:
            where, name = seed(make, store, request, str(tmp_path))
            held = FailingEmbedder(embedder, fail_at=fail_at)
            pipeline = make(held, **where, **chunker, **settings)
            before = physical(pipeline, name)
            url = stack.enter_context(serve(create_app(pipeline=pipeline)))
            client = stack.enter_context(httpx.Client(base_url=url, headers=AUTH, timeout=60))
            return Served(name, where, pipeline, held, client, url, before)

        yield _start


def documents(client: httpx.Client, name: str) -> dict[str, str]:
    r = client.get("/documents", params={"collection": name})
    assert r.status_code == 200, r.text
    return {d["document_id"]: d["content_hash"] for d in r.json()["documents"]}


def follow(client: httpx.Client, name: str, timeout: float = 120) -> dict[str, Any]:
    """Poll the job until it has finished; every answer on the way is a consistent state."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/collections/{name}/reindex").json()
        assert job["documents_done"] <= job["documents_total"] + 1, job
        if job["state"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("store", STORES)
def test_reindex_switches_while_queries_answer(served: Callable[..., Served]) -> None:
    s = served(NEW, reindex_batch_documents=3)
    name, pipeline, held, client, before = s.name, s.pipeline, s.embedder, s.client, s.before
    held.pause = 0.3  # 4 pages: queries run through the whole build and the switch
    answers: list[tuple[int, int]] = []
    stop = threading.Event()

    def ask(url: str) -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as c:
            while not stop.is_set():
                body = {"query": "common m5c0 alpha", "collection": name, "generate": False}
                r = c.post("/query", json=body)
                answers.append((r.status_code, len(r.json().get("sources", []))))

    listed = documents(client, name)
    # The new chunker is refused for writes until the collection is re-indexed.
    r = client.post("/ingest", json={"text": "late text.", "collection": name})
    assert r.status_code == 409 and "reindex" in r.json()["detail"], r.text
    querier = threading.Thread(target=ask, args=(s.url,))
    querier.start()
    try:
        r = client.post(f"/collections/{name}/reindex")
        assert r.status_code == 202, r.text
        assert r.json()["state"] == "running" and r.json()["documents_total"] == DOCS
        assert r.headers["location"] == f"/collections/{name}/reindex"
        job = follow(client, name)
    finally:
        stop.set()
        querier.join(30)
    assert job["state"] == "succeeded", job
    assert job["documents_done"] == DOCS and job["error"] is None
    assert job["chunker"]["size"] == NEW["chunk_size"]
    # Every query during the re-index answered, from the old build or the new one.
    assert len(answers) >= 3 and all(a == (200, 3) for a in answers), answers[:10]
    # Same documents, same versions; cut with the new chunker: two sentences per chunk.
    assert documents(client, name) == listed
    chunks = {c["name"]: c["chunks"] for c in client.get("/collections").json()["collections"]}
    assert chunks[name] == sum((1 + i % 3 + 1) // 2 for i in range(DOCS))
    assert not [n for n in chunks if "." in n]
    top = client.post(
        "/query", json={"query": "m7c1", "collection": name, "generate": False}
    ).json()
    assert top["sources"][0]["document_id"] == "d07"
    # One physical collection, not the old one: the old build is dropped.
    after = physical(pipeline, name)
    assert after != before and len(after) == len(before), (before, after)
    # Writes with the new chunker now go in; a second re-index moves the name again.
    r = client.post("/ingest", json={"text": "late text.", "collection": name})
    assert r.status_code == 200 and r.json()["status"] == "created", r.text
    held.pause = 0.0
    # Writes while it builds reach the old collection and are brought over at the switch.
    held.hold.clear()
    held.entered.clear()
    assert client.post(f"/collections/{name}/reindex").status_code == 202
    assert held.entered.wait(30)
    new = {"text": "during text.", "document_id": "during", "collection": name}
    assert client.post("/ingest", json=new).json()["status"] == "created"
    changed = {"text": "changed m2c0 text.", "document_id": "d02", "collection": name}
    assert client.post("/ingest", json=changed).json()["status"] == "updated"
    assert client.delete("/documents/d01", params={"collection": name}).status_code == 200
    expected = documents(client, name)
    held.hold.set()
    job = follow(client, name)
    assert job["state"] == "succeeded" and job["documents_done"] == DOCS + 1, job
    assert documents(client, name) == expected
    top = client.post("/query", json={"query": "changed m2c0", "collection": name}).json()
    assert top["sources"][0]["document_id"] == "d02"
    assert "m2c0" in top["sources"][0]["text"] and "changed" in top["sources"][0]["text"]
    assert len(physical(pipeline, name)) == len(before) and physical(pipeline, name) != after
    metrics = client.get("/metrics").text
    assert 'rag_reindex_jobs_total{state="succeeded"} 2.0' in metrics


@pytest.mark.parametrize("store", STORES)
def test_reindex_failure_midway_leaves_the_old_collection(
    served: Callable[..., Served], embedder: LocalEmbedder
) -> None:
    s = served(NEW, fail_at=3, reindex_batch_documents=4)
    name, pipeline, failing, client, before = s.name, s.pipeline, s.embedder, s.client, s.before
    query = {"query": "common m3c1", "collection": name, "generate": False}
    answer = client.post("/query", json=query).json()["sources"]
    listed = documents(client, name)
    r = client.post(f"/collections/{name}/reindex", params={"wait": 60})
    job = r.json()
    assert r.status_code == 200 and job["state"] == "failed", job
    assert "injected failure" in job["error"] and job["documents_done"] == 8, job
    # The old collection serves on, unchanged; the build is gone.
    assert client.post("/query", json=query).json()["sources"] == answer
    assert documents(client, name) == listed
    assert physical(pipeline, name) == before
    assert (pipeline.store.get_chunker(name) or {})["size"] == OLD["chunk_size"]
    assert 'rag_reindex_jobs_total{state="failed"} 1.0' in client.get("/metrics").text
    # A build left by a process killed mid-job: hidden, and dropped by the next re-index.
    chunker = pipeline.chunker()[1].as_dict()
    leftover = pipeline.store.create_staging(name, embedder.dimension, chunker)
    listed_names = [c["name"] for c in client.get("/collections").json()["collections"]]
    assert name in listed_names and leftover not in listed_names
    assert pipeline.store.leftover_staging(name) == [leftover]
    # Fixed, it goes through.
    failing.fail_at = 0
    r = client.post(f"/collections/{name}/reindex", params={"wait": 60})
    assert r.json()["state"] == "succeeded", r.text
    assert documents(client, name) == listed
    after = physical(pipeline, name)
    assert len(after) == len(before) and not [p for p in after if leftover in p], after


@pytest.mark.parametrize("store", STORES)
def test_reindex_refusals_and_the_0_3_0_layout(
    served: Callable[..., Served], make: Callable[..., Pipeline], store: str
) -> None:
    """404 unknown; 409 while one runs; a collection of the 0.3.0 layout (no chunker
    recorded) upgraded; 409 with guidance when documents have no kept original."""
    s = served(OLD)
    name, where, pipeline, held, client = s.name, s.where, s.pipeline, s.embedder, s.client
    # The 0.3.0 layout: chunks, and no chunker recorded with the collection.
    if store == "pgvector":
        from psycopg import connect

        with connect(where["pgvector_dsn"]) as conn:
            conn.execute("UPDATE rag_collections SET chunker = NULL WHERE name = %s", (name,))
    else:
        from rag_pipeline.layout import CHUNKER_KEY

        pipeline.store.client.update_collection(name, metadata={CHUNKER_KEY: None})  # type: ignore[attr-defined]
    assert pipeline.store.get_chunker(name) is None
    assert client.post("/collections/nothing-here/reindex").status_code == 404
    assert client.get(f"/collections/{name}/reindex").status_code == 404
    r = client.post("/ingest", json={"text": "late text.", "collection": name})
    assert r.status_code == 409 and "0.3.0" in r.json()["detail"], r.text
    held.hold.clear()  # the job waits in its first embedding
    assert client.post(f"/collections/{name}/reindex").status_code == 202
    r = client.post(f"/collections/{name}/reindex")
    assert r.status_code == 409 and "is being re-indexed" in r.json()["detail"], r.text
    if store == "pgvector":  # another replica on the same database is refused too
        with pytest.raises(ReindexConflictError, match="another process"):
            make(**where, **OLD).start_reindex(name)
    held.hold.set()
    assert follow(client, name)["state"] == "succeeded"
    assert pipeline.store.get_chunker(name) == pipeline.chunker()[1].as_dict()
    r = client.post("/ingest", json={"text": "late text.", "collection": name})
    assert r.status_code == 200, r.text
    # Documents from before 0.5.0 kept no original: refused, saying what to do.
    drop_originals(pipeline, name, ["d03", "d05"])
    r = client.post(f"/collections/{name}/reindex")
    detail = r.json()["detail"]
    assert r.status_code == 409 and "2 document(s) ('d03', 'd05')" in detail, r.text
    assert "Ingest them again as they are" in detail
    # Ingested again as they are, they are written once more, their originals kept.
    again = [d.model_dump() for d in seed_docs() if d.document_id in ("d03", "d05", "d06")]
    r = client.post("/ingest/batch", json={"documents": again, "collection": name})
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses == ["updated", "updated", "unchanged"], r.text
    r = client.post(f"/collections/{name}/reindex", params={"wait": 60})
    assert r.json()["state"] == "succeeded", r.text


def drop_originals(pipeline: Pipeline, name: str, ids: list[str]) -> None:
    """What a document written by rag_pipeline 0.4.0 looks like: no original kept."""
    store: Any = pipeline.store
    if pipeline.settings.vector_store == "pgvector":
        from psycopg import connect

        from rag_pipeline.stores.pgvector import table_name

        with connect(pipeline.settings.pgvector_dsn or "") as conn:
            table = table_name("rag_originals_", store.physical_name(name))
            conn.execute(f'DELETE FROM "{table}" WHERE document_id = ANY(%s)', (ids,))
        return
    from rag_pipeline.documents import head_id
    from rag_pipeline.layout import ORIGINAL_KEPT_KEY, ORIGINAL_KEY

    heads = [head_id(d) for d in ids]
    store.client.delete_payload(name, keys=[ORIGINAL_KEY, ORIGINAL_KEPT_KEY], points=heads)
