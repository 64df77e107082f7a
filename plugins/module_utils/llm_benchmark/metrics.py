# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-request records and the aggregate metrics (guidellm's definitions).

- TTFT: first content event - request start.
- ITL: (last content event - first content event) / (output tokens - 1), per request.
- TPOT: (last content event - request start) / output tokens (includes the first token).
- Latency: end of response - request start.
- Percentiles: nearest rank on the empirical CDF (the smallest observed value whose cumulative
  share is >= p), the definition guidellm uses; every reported percentile is an observed value.
- Only successful requests enter latency / token figures; errored and incomplete requests are
  counted apart (and errored ones only in ``error_rate``).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from typing import Any

__all__ = [
    "ERRORED",
    "INCOMPLETE",
    "OK",
    "STATS",
    "Records",
    "percentile",
    "phase_metrics",
    "summarize",
]

OK = 0
ERRORED = 1
INCOMPLETE = 2

STATS = ("mean", "p50", "p90", "p95", "p99")


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (``p`` in 0..100)."""
    n = len(sorted_values)
    if n == 0:
        return None
    rank = math.ceil(p / 100.0 * n - 1e-9)
    return sorted_values[min(max(rank, 1), n) - 1]


def summarize(values: list[float] | array) -> dict[str, Any]:
    """``{mean, p50, p90, p95, p99, min, max, std, count}``; all None (count 0) when empty."""
    vals = sorted(values)
    n = len(vals)
    if n == 0:
        return {k: None for k in (*STATS, "min", "max", "std")} | {"count": 0}
    mean = math.fsum(vals) / n
    var = math.fsum((v - mean) ** 2 for v in vals) / n
    out: dict[str, Any] = {"mean": _r(mean)}
    for q in (50, 90, 95, 99):
        out[f"p{q}"] = _r(percentile(vals, q))
    out.update(min=_r(vals[0]), max=_r(vals[-1]), std=_r(math.sqrt(var)), count=n)
    return out


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(v, nd)


class Records:
    """Column store of per-request timings (perf_counter seconds), filled by the scheduler."""

    __slots__ = (
        "end",
        "errors",
        "first",
        "in_tokens",
        "last",
        "out_tokens",
        "sched",
        "start",
        "status",
    )

    def __init__(self) -> None:
        self.sched = array("d")
        self.start = array("d")
        self.first = array("d")
        self.last = array("d")
        self.end = array("d")
        self.out_tokens = array("l")
        self.in_tokens = array("l")
        self.status = array("b")
        self.errors: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.status)

    def add(
        self,
        sched: float,
        start: float,
        res: tuple[bool, int, float, float, float, int, int, int, str],
        est_in_tokens: int,
    ) -> None:
        ok, _status, first, last, end, chunks, usage_out, usage_in, err = res
        self.sched.append(sched)
        self.start.append(start)
        self.first.append(first)
        self.last.append(last)
        self.end.append(end)
        self.out_tokens.append(usage_out if usage_out >= 0 else chunks)
        self.in_tokens.append(usage_in if usage_in >= 0 else est_in_tokens)
        if ok:
            self.status.append(OK)
        else:
            self.status.append(ERRORED)
            self.errors[err] += 1

    def add_incomplete(self, sched: float, start: float, now: float, est_in_tokens: int) -> None:
        self.sched.append(sched)
        self.start.append(start)
        self.first.append(0.0)
        self.last.append(0.0)
        self.end.append(now)
        self.out_tokens.append(0)
        self.in_tokens.append(est_in_tokens)
        self.status.append(INCOMPLETE)

    def per_request(self, t0: float) -> dict[str, list[Any]]:
        """Per-request series (ms relative to ``t0``), successful requests only."""
        out: dict[str, list[Any]] = {"start_s": [], "ttft_ms": [], "itl_ms": [], "latency_ms": []}
        for i in range(len(self.status)):
            if self.status[i] != OK:
                continue
            s = self.start[i]
            out["start_s"].append(round(s - t0, 4))
            out["latency_ms"].append(round((self.end[i] - s) * 1000, 3))
            f = self.first[i]
            out["ttft_ms"].append(round((f - s) * 1000, 3) if f else None)
            n = self.out_tokens[i]
            itl = (self.last[i] - f) * 1000 / (n - 1) if f and n > 1 else None
            out["itl_ms"].append(round(itl, 4) if itl is not None else None)
        return out


def phase_metrics(rec: Records, t0: float, t_end: float, stream: bool) -> dict[str, Any]:
    """Aggregate one benchmark phase; ``t0``..``t_end`` is the measured window."""
    ttft: list[float] = []
    itl: list[float] = []
    tpot: list[float] = []
    lat: list[float] = []
    out_tok: list[float] = []
    in_tok: list[float] = []
    busy = 0.0
    ok = err = inc = 0
    total_out = 0
    status, start, first, last, end = rec.status, rec.start, rec.first, rec.last, rec.end
    out_tokens, in_tokens = rec.out_tokens, rec.in_tokens
    for i in range(len(status)):
        st = status[i]
        s = start[i]
        busy += end[i] - s
        if st != OK:
            if st == ERRORED:
                err += 1
            else:
                inc += 1
            continue
        ok += 1
        e = end[i]
        n = out_tokens[i]
        total_out += n
        out_tok.append(n)
        in_tok.append(in_tokens[i])
        lat.append((e - s) * 1000.0)
        f = first[i]
        if f:
            ttft.append((f - s) * 1000.0)
            if n > 0:
                tpot.append((last[i] - s) * 1000.0 / n)
            if stream and n > 1:
                itl.append((last[i] - f) * 1000.0 / (n - 1))
    duration = max(t_end - t0, 1e-9)
    finished = ok + err
    return {
        "successful": ok,
        "errored": err,
        "incomplete": inc,
        "total": ok + err + inc,
        "error_rate": round(err / finished, 6) if finished else 0.0,
        "duration_s": round(duration, 4),
        "requests_per_second": round(ok / duration, 4),
        "output_tokens_per_second": round(total_out / duration, 4),
        "concurrency": round(busy / duration, 4),
        "ttft_ms": summarize(ttft),
        "itl_ms": summarize(itl),
        "tpot_ms": summarize(tpot),
        "latency_ms": summarize(lat),
        "output_tokens": summarize(out_tok),
        "prompt_tokens": summarize(in_tok),
        "errors": dict(rec.errors.most_common(10)),
    }
