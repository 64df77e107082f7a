"""Scheduling: closed loop, open loop (constant / poisson), limits, drain, sweep rates."""

from __future__ import annotations

import asyncio
import itertools
import statistics
from time import perf_counter

import pytest

from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.metrics import (
    INCOMPLETE,
    OK,
)
from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.profiles import (
    Phase,
    run_phase,
    sweep_rates,
)
from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.prompts import (
    PromptSource,
)


class FakePool:
    """Answers every request after ``delay`` seconds; records concurrency and send times."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.inflight = 0
        self.max_inflight = 0
        self.sent: list[float] = []

    async def request(self, payload: bytes):
        self.sent.append(perf_counter())
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.inflight -= 1
        now = perf_counter()
        return (True, 200, now, now, now, 4, 4, 10, "")


SOURCE = PromptSource(b"POST / HTTP/1.1\r\nContent-Length: ", "m", "chat", True, 8, 4, 1)


def run(pool, phase, drain=5.0, progress=None):
    return asyncio.run(run_phase(pool, SOURCE, phase, 0, drain, 7, progress, 0.05))


def test_concurrent_keeps_n_in_flight_and_stops_at_max_requests():
    pool = FakePool(0.01)
    rec, t0, t_end = run(pool, Phase("c", "concurrent", 8, max_requests=80))
    assert len(rec) == 80 and pool.max_inflight == 8
    assert all(s == OK for s in rec.status)
    # 80 requests, 8 at a time, 10 ms each: about 100 ms
    assert 0.09 <= t_end - t0 < 0.5


def test_synchronous_is_one_at_a_time():
    pool = FakePool(0.002)
    rec, _, _ = run(pool, Phase("s", "concurrent", 1, max_requests=20))
    assert len(rec) == 20 and pool.max_inflight == 1
    assert all(rec.start[i] >= rec.end[i - 1] for i in range(1, 20))


def test_constant_rate_spacing():
    pool = FakePool(0.05)
    rec, _, _ = run(pool, Phase("k", "constant", None, 100.0, max_requests=40))
    gaps = [b - a for a, b in zip(pool.sent, pool.sent[1:], strict=False)]
    assert statistics.mean(gaps) == pytest.approx(0.01, rel=0.15)
    assert pool.max_inflight >= 4  # open loop: requests overlap
    # scheduled times are exact multiples of 1/rate
    sched = sorted(rec.sched)
    assert sched[10] - sched[0] == pytest.approx(0.1, abs=1e-6)


def test_poisson_is_seeded_exponential():
    pool = FakePool(0.001)
    run(pool, Phase("p", "poisson", None, 200.0, max_requests=120))
    gaps = [b - a for a, b in zip(pool.sent, pool.sent[1:], strict=False)]
    assert statistics.mean(gaps) == pytest.approx(1 / 200, rel=0.35)
    assert statistics.pstdev(gaps) > 0.4 * statistics.mean(gaps)  # not evenly spaced


def test_rate_with_concurrency_cap():
    pool = FakePool(0.05)
    run(pool, Phase("k", "constant", 3, 200.0, max_requests=30))
    assert pool.max_inflight == 3


def test_max_seconds_and_drain_timeout_bound_the_phase():
    pool = FakePool(10.0)  # requests that would never finish in time
    t = perf_counter()
    rec, _, _ = run(pool, Phase("c", "concurrent", 4, max_seconds=0.2), drain=0.1)
    assert perf_counter() - t < 1.0
    assert len(rec) == 4 and all(s == INCOMPLETE for s in rec.status)


def test_open_loop_drain_counts_only_sent_requests():
    pool = FakePool(10.0)
    rec, _, _ = run(pool, Phase("k", "constant", 2, 50.0, max_seconds=0.2), drain=0.05)
    # only the 2 requests allowed in flight were sent; queued ones are not "incomplete"
    assert len(rec) == 2 and all(s == INCOMPLETE for s in rec.status)


def test_progress_events():
    events = []
    pool = FakePool(0.02)
    run(pool, Phase("c", "concurrent", 2, max_seconds=0.3), progress=events.append)
    assert events[-1]["final"] and events[-1]["phase"] == "c"
    assert len(events) >= 3
    assert {"elapsed_s", "completed", "errored", "in_flight", "requests_per_second"} <= set(
        events[0]
    )


def test_sweep_rates():
    assert sweep_rates(1.0, 11.0, 4) == [3.0, 5.0, 7.0, 9.0]
    assert sweep_rates(11.0, 1.0, 1) == [6.0]


def test_rampup_spreads_the_first_requests_of_concurrent_streams():
    pool = FakePool(0.5)
    rec, _, _ = run(pool, Phase("c", "concurrent", 4, max_requests=4, rampup=0.4))
    firsts = sorted(pool.sent)
    # stream i starts at rampup * i / 4: 0, 0.1, 0.2, 0.3 s - spread out, not all at once
    assert 0.25 <= firsts[-1] - firsts[0] <= 0.45
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(firsts))
    assert len(rec) == 4 and pool.max_inflight == 4


def test_rampup_streams_not_started_by_the_deadline_are_not_requests():
    pool = FakePool(0.05)
    t = perf_counter()
    rec, _, _ = run(pool, Phase("c", "concurrent", 8, max_seconds=0.3, rampup=2.0), drain=5.0)
    # 8 streams over 2 s: only the first two start inside 0.3 s; the other six never send,
    # are not counted, and do not keep the phase open until their start time
    assert perf_counter() - t < 1.0
    assert len(pool.sent) == len(rec) and all(s == OK for s in rec.status)
    assert {round(x - pool.sent[0], 1) for x in pool.sent} <= {0.0, 0.1, 0.2, 0.3}


def test_rampup_streams_stop_waiting_once_max_requests_are_sent():
    pool = FakePool(0.001)
    t = perf_counter()
    rec, _, _ = run(pool, Phase("c", "concurrent", 4, max_requests=40, rampup=3.0))
    # stream 0 sends all 40 requests within ~0.1 s; the 3 streams still waiting give up at once
    assert perf_counter() - t < 1.0
    assert len(rec) == 40 and all(s == OK for s in rec.status)


def test_without_rampup_concurrent_streams_start_together():
    pool = FakePool(0.2)
    run(pool, Phase("c", "concurrent", 4, max_requests=4))
    assert max(pool.sent) - min(pool.sent) < 0.03
