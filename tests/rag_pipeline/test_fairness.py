"""Fair use of the embedding model (issue #13): queries go before the next ingestion slice,
ingestion is embedded in slices, and /ready never embeds or waits for the model.

The scheduler tests are deterministic: the grant order is recorded inside the slot, and each
step waits on the scheduler's own queue state, not on the clock. Latency under load is
measured by benchmarks/rag_fairness.py, not here."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
from fastapi.testclient import TestClient

from rag_pipeline.embeddings import EmbedScheduler, Lane, LocalEmbedder


def _wait_until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not cond():
        assert time.monotonic() < deadline, "scheduler state not reached"
        time.sleep(0.005)


class Recorder:
    """Threads that take a slot, record their name inside it, and leave."""

    def __init__(self, scheduler: EmbedScheduler) -> None:
        self.scheduler = scheduler
        self.order: list[str] = []
        self.threads: list[threading.Thread] = []

    def queue(self, name: str, lane: Lane) -> None:
        """Start a thread that waits for a slot; return once it is in the queue."""
        before = self.scheduler.waiting(lane)

        def run() -> None:
            with self.scheduler.slot(lane):
                self.order.append(name)

        t = threading.Thread(target=run, daemon=True)
        self.threads.append(t)
        t.start()
        _wait_until(lambda: self.scheduler.waiting(lane) == before + 1)

    def join(self) -> list[str]:
        for t in self.threads:
            t.join(10)
        return self.order


def test_waiting_query_gets_the_slot_before_the_next_ingestion_slice() -> None:
    scheduler = EmbedScheduler()
    rec = Recorder(scheduler)
    in_first_slice, go = threading.Event(), threading.Event()

    def ingestion() -> None:  # what Embedder.embed does: one slot per slice, back to back
        for i in range(3):
            with scheduler.slot("ingest"):
                rec.order.append(f"slice-{i}")
                if i == 0:
                    in_first_slice.set()
                    assert go.wait(10)

    t = threading.Thread(target=ingestion, daemon=True)
    rec.threads.append(t)
    t.start()
    assert in_first_slice.wait(10)
    rec.queue("query", "query")  # arrives while slice 0 runs
    go.set()
    # A plain lock lets the ingestion thread take it straight back for slice 1.
    assert rec.join() == ["slice-0", "query", "slice-1", "slice-2"]
    assert scheduler.grants == {"query": 1, "ingest": 3}


def test_queries_in_arrival_order_and_ingestion_not_starved() -> None:
    scheduler = EmbedScheduler(query_burst=2)
    rec = Recorder(scheduler)
    with scheduler.slot("ingest"):  # a slice in progress
        rec.queue("slice", "ingest")
        for name in ("q1", "q2", "q3"):
            rec.queue(name, "query")
    # Two queries (the burst), then the waiting slice, then the rest.
    assert rec.join() == ["q1", "q2", "slice", "q3"]


def test_ingestion_is_embedded_in_slices(embedder: LocalEmbedder) -> None:
    # Same model and scheduler (shared per process); slices of 4 whatever the measured rate.
    sliced = LocalEmbedder(slice_size=4, slice_target_s=3600)
    assert sliced.scheduler is embedder.scheduler
    # Lengths vary: slices are cut longest first, the vectors come back in input order.
    texts = [
        f"document {i} " + "about GPU time-slicing and storage " * (i % 4 + 1) for i in range(10)
    ]
    before = dict(sliced.scheduler.grants)
    got = sliced.embed(texts)
    assert sliced.scheduler.grants["ingest"] - before["ingest"] == 3  # 4 + 4 + 2
    assert got.shape == (10, sliced.dimension)
    assert np.allclose(got, embedder._encode(texts), atol=1e-5)  # same vectors as one call


def test_slices_follow_the_measured_rate(embedder: LocalEmbedder) -> None:
    e = LocalEmbedder(slice_size=32, slice_target_s=0.5)
    e._rate = None
    assert e._next_slice() == 4  # nothing measured: small
    e._rate = 20.0  # texts/s: half a second is 10 texts
    assert e._next_slice() == 10
    e._rate = 1000.0
    assert e._next_slice() == 32  # never more than slice_size
    e._rate = 0.5  # a very busy machine: one text at a time
    assert e._next_slice() == 1


def test_ready_does_not_embed_or_wait_for_the_model(
    make_client: Callable[..., TestClient], embedder: LocalEmbedder
) -> None:
    client = make_client(ready_cache_s=0)
    anon = TestClient(client.app)
    statuses: list[int] = []

    def probe() -> None:
        for _ in range(3):
            statuses.append(anon.get("/ready").status_code)

    with embedder.scheduler.slot("ingest"):  # the model is busy with an ingestion slice
        before = dict(embedder.scheduler.grants)
        t = threading.Thread(target=probe, daemon=True)
        t.start()
        t.join(30)  # a probe that needs the model would wait here until the slice ends
        blocked = t.is_alive()
    assert not blocked, "/ready waited for the embedding model"
    assert statuses == [200, 200, 200]
    assert embedder.scheduler.grants == before  # no embedding per probe
    assert anon.get("/ready").json()["checks"]["embedder"] == "ok (local)"
