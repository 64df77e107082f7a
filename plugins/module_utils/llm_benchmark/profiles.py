# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load profiles and the phase scheduler.

- ``synchronous``: one request at a time.
- ``concurrent``: ``concurrency`` closed-loop streams (no per-worker caps: one event loop).
  With ``rampup`` seconds, stream ``i`` sends its first request at ``t0 + rampup * i / n``
  instead of all at once, so the streams do not stay in lock-step (see ``BenchmarkConfig``).
- ``constant`` / ``poisson``: open loop at ``rate`` requests/s (evenly spaced / exponential
  gaps, seeded); ``concurrency`` then caps in-flight requests (unbounded by default).
- ``sweep``: synchronous, then concurrent (the throughput ceiling), then ``constant`` at each
  rate in ``rate`` or at ``sweep_points`` rates evenly spaced between the two measured rates.

Every phase is bounded: it stops issuing at ``max_requests`` or ``max_seconds``, then waits at
most ``drain_timeout`` seconds for in-flight requests, which are then cancelled and counted as
incomplete. No phase can hang the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from .client import Pool
from .metrics import Records
from .prompts import PromptSource

__all__ = ["Phase", "ProgressFn", "run_phase", "sweep_rates"]

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class Phase:
    """One measured run: a scheduling mode and its limits."""

    name: str
    mode: str  # "concurrent" | "constant" | "poisson"
    concurrency: int | None = None  # workers (concurrent) or in-flight cap (rate modes)
    rate: float | None = None
    max_requests: int | None = None
    max_seconds: float | None = None
    rampup: float = 0.0  # concurrent only: spread the streams' first requests over this

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "max_requests": self.max_requests,
            "max_seconds": self.max_seconds,
            "rampup": self.rampup,
        }


def sweep_rates(sync_rps: float, max_rps: float, points: int) -> list[float]:
    """``points`` rates evenly spaced strictly between the synchronous and maximum rates."""
    lo, hi = min(sync_rps, max_rps), max(sync_rps, max_rps)
    step = (hi - lo) / (points + 1)
    return [round(lo + step * (i + 1), 4) for i in range(points)]


class _State:
    __slots__ = ("halted", "issued", "next_progress", "stop")

    def __init__(self) -> None:
        self.issued = 0
        self.stop = False
        self.next_progress = 0.0
        self.halted = asyncio.Event()  # wakes streams still waiting for their rampup start

    def halt(self) -> None:
        self.stop = True
        self.halted.set()


async def run_phase(
    pool: Pool,
    source: PromptSource,
    phase: Phase,
    index_base: int,
    drain_timeout: float,
    seed: int,
    progress: ProgressFn | None = None,
    progress_interval: float = 1.0,
) -> tuple[Records, float, float]:
    """Run one phase; returns the records and the measured window (t0, t_end)."""
    rec = Records()
    st = _State()
    inflight: dict[asyncio.Task[Any] | None, tuple[float, float, int]] = {}
    max_requests = phase.max_requests
    t0 = perf_counter()
    deadline = t0 + phase.max_seconds if phase.max_seconds else math.inf
    st.next_progress = t0 + progress_interval
    est_tokens = source.prompt_tokens

    def report(now: float, final: bool = False) -> None:
        st.next_progress = now + progress_interval
        if progress is None:
            return
        done = len(rec)
        progress(
            {
                "phase": phase.name,
                "elapsed_s": round(now - t0, 2),
                "issued": st.issued,
                "completed": done,
                "errored": rec.errors.total(),
                "in_flight": st.issued - done,
                "requests_per_second": round(done / max(now - t0, 1e-9), 2),
                "final": final,
            }
        )

    def limit_reached(now: float) -> bool:
        if st.stop or now >= deadline or (max_requests is not None and st.issued >= max_requests):
            st.halt()
        return st.stop

    if phase.mode == "concurrent":
        workers = max(int(phase.concurrency or 1), 1)
        if max_requests is not None:
            workers = min(workers, max(max_requests, 1))

        async def worker(first_at: float) -> None:
            req = pool.request
            add = rec.add
            me = asyncio.current_task()
            # Rampup: wait for this stream's start, but not past the phase's end.
            delay = min(first_at, deadline) - perf_counter()
            if delay > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(st.halted.wait(), delay)
            while True:
                now = perf_counter()
                if limit_reached(now):
                    return
                idx = index_base + st.issued
                st.issued += 1
                payload = source.payload(idx)
                start = perf_counter()
                inflight[me] = (start, start, est_tokens)
                res = await req(payload)
                add(start, start, res, est_tokens)
                if res[4] >= st.next_progress:
                    report(res[4])

        ramp = max(phase.rampup, 0.0)
        starts = [t0 + ramp * i / workers for i in range(workers)]
        tasks = [asyncio.ensure_future(worker(first_at)) for first_at in starts]
        for t, first_at in zip(tasks, starts, strict=True):
            # start -1: not sent yet, so a stream still waiting for its rampup start is not
            # counted as an incomplete request when the phase ends
            inflight.setdefault(t, (first_at, t0 if first_at <= t0 else -1.0, est_tokens))
        await _wait_bounded(tasks, deadline, drain_timeout, st)
        _cancel_rest(tasks, inflight, rec, st)
    else:
        rate = float(phase.rate or 1.0)
        rng = random.Random(seed)
        cap = asyncio.Semaphore(phase.concurrency) if phase.concurrency else None
        tasks_set: set[asyncio.Task[None]] = set()

        async def one(idx: int, sched: float) -> None:
            payload = source.payload(idx)
            if cap is not None:
                async with cap:
                    start = perf_counter()
                    inflight[asyncio.current_task()] = (sched, start, est_tokens)
                    res = await pool.request(payload)
            else:
                start = perf_counter()
                inflight[asyncio.current_task()] = (sched, start, est_tokens)
                res = await pool.request(payload)
            rec.add(sched, start, res, est_tokens)
            if res[4] >= st.next_progress:
                report(res[4])

        def done_cb(task: asyncio.Task[None]) -> None:
            tasks_set.discard(task)
            inflight.pop(task, None)

        next_t = t0
        while True:
            now = perf_counter()
            if limit_reached(now) or next_t >= deadline:
                st.halt()
                break
            if next_t > now:
                await asyncio.sleep(next_t - now)
                continue
            idx = index_base + st.issued
            st.issued += 1
            task = asyncio.ensure_future(one(idx, next_t))
            inflight[task] = (next_t, -1.0, est_tokens)  # not sent yet
            tasks_set.add(task)
            task.add_done_callback(done_cb)
            gap = rng.expovariate(rate) if phase.mode == "poisson" else 1.0 / rate
            next_t += gap
            if now >= st.next_progress:
                report(now)
        pending = list(tasks_set)
        await _wait_bounded(pending, deadline, drain_timeout, st)
        _cancel_rest(pending, inflight, rec, st)
    t_end = perf_counter()
    done_at = max(rec.end) if len(rec) else t_end
    report(t_end, final=True)
    return rec, t0, min(max(done_at, t0), t_end)


async def _wait_bounded(
    tasks: list[asyncio.Task[None]],
    deadline: float,
    drain_timeout: float,
    st: _State,
) -> None:
    """Wait for tasks until the phase deadline, then at most ``drain_timeout`` more.

    Without ``max_seconds`` the phase is bounded by ``max_requests`` and every request by the
    request timeout, so waiting for all of them is bounded too.
    """
    pending = {t for t in tasks if not t.done()}
    if not pending:
        return
    if deadline == math.inf:
        await asyncio.wait(pending)
        return
    remaining = deadline - perf_counter()
    if remaining > 0:
        _done, pending = await asyncio.wait(pending, timeout=remaining)
    st.halt()
    if pending:
        await asyncio.wait(pending, timeout=max(drain_timeout, 0.0))


def _cancel_rest(
    tasks: list[asyncio.Task[None]],
    inflight: dict[asyncio.Task[Any] | None, tuple[float, float, int]],
    rec: Records,
    st: _State,
) -> None:
    now = perf_counter()
    for t in tasks:
        if not t.done():
            sched, start, est = inflight.get(t, (now, now, 0))
            t.cancel()
            if start >= 0:  # queued requests that were never sent are not counted
                rec.add_incomplete(sched, start, now, est)
