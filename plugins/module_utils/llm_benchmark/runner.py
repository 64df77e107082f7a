# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark orchestration: resolve the model, plan the phases, run them, judge the SLO."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

from .client import EndpointError, HttpTarget, Pool, fetch_json, make_ssl_context
from .config import BenchmarkConfig, evaluate_slo
from .metrics import STATS, Records, phase_metrics
from .profiles import Phase, run_phase, sweep_rates
from .prompts import PromptSource, load_prompt_file

__all__ = [
    "BenchmarkCancelled",
    "BenchmarkError",
    "flat_stats",
    "plan_phases",
    "resolve_model",
    "run_benchmark",
]

LogFn = Callable[[str], None]
EventFn = Callable[[dict[str, Any]], None]
PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


class BenchmarkError(Exception):
    """The benchmark could not run (endpoint unreachable, no model, bad dataset...)."""


class BenchmarkCancelled(BenchmarkError):
    """The caller's ``cancel`` event was set: the load stopped and no report was written."""


def _api_path(target: HttpTarget, path: str) -> str:
    # base_url may already end in /v1 (the usual OpenAI client convention)
    return path[3:] if target.prefix.endswith("/v1") else path


def resolve_model(cfg: BenchmarkConfig, target: HttpTarget) -> tuple[str, list[str]]:
    ctx = make_ssl_context(cfg.validate_certs, cfg.ca_path)
    try:
        data = fetch_json(
            target, _api_path(target, "/v1/models"), cfg.api_key, min(cfg.timeout, 15.0), ctx
        )
    except EndpointError as exc:
        raise BenchmarkError(str(exc)) from exc
    items = data.get("data", []) if isinstance(data, dict) else []
    models = [str(m.get("id")) for m in items if isinstance(m, dict) and m.get("id")]
    if cfg.model:
        return cfg.model, models
    if not models:
        raise BenchmarkError(f"{target.url('/v1/models')} lists no model; set model explicitly")
    return models[0], models


def plan_phases(cfg: BenchmarkConfig) -> list[Phase]:
    """Phases known before running (a sweep's interpolated rates are decided after two)."""
    lim = {"max_requests": cfg.max_requests, "max_seconds": cfg.max_seconds}
    p = cfg.profile
    if p == "synchronous":
        return [Phase("synchronous", "concurrent", 1, **lim)]
    if p == "concurrent":
        return [
            Phase(
                f"concurrent@{cfg.concurrency}",
                "concurrent",
                cfg.concurrency,
                rampup=cfg.rampup,
                **lim,
            )
        ]
    if p in ("constant", "poisson"):
        rate = (cfg.rate or [1.0])[0]
        return [Phase(f"{p}@{rate:g}", p, cfg.concurrency, rate, **lim)]
    phases = [Phase("synchronous", "concurrent", 1, **lim)]
    if cfg.rate:
        phases += [Phase(f"constant@{r:g}", "constant", None, r, **lim) for r in cfg.rate]
    else:
        conc = cfg.concurrency or 32
        phases.append(Phase(f"throughput@{conc}", "concurrent", conc, rampup=cfg.rampup, **lim))
    return phases


def _warmup_phase(cfg: BenchmarkConfig, phase: Phase) -> Phase | None:
    w = cfg.warmup or {}
    if not w.get("requests") and not w.get("seconds"):
        return None
    return Phase(
        f"warmup:{phase.name}",
        phase.mode,
        phase.concurrency,
        phase.rate,
        max_requests=w.get("requests") or None,
        max_seconds=w.get("seconds") or None,
        rampup=phase.rampup,
    )


class _Progress:
    """Module log lines + ``progress.jsonl`` (one JSON object per line, ~1/s) + the caller's
    ``on_progress`` callback (the same events, as dicts)."""

    def __init__(
        self, report_dir: str | None, log: LogFn | None, on_progress: EventFn | None = None
    ) -> None:
        self.log = log
        self.on_progress = on_progress
        self.fh = None
        self.path: str | None = None
        if report_dir:
            Path(report_dir).mkdir(parents=True, exist_ok=True)
            self.path = os.path.join(report_dir, "progress.jsonl")
            self.fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115

    def __call__(self, event: dict[str, Any]) -> None:
        event = {"time": round(time.time(), 3), **event}
        if self.fh is not None:
            self.fh.write(json.dumps(event) + "\n")
            self.fh.flush()
        if self.on_progress is not None:
            self.on_progress(event)
        if self.log is not None:
            self.log(
                "llm_benchmark {phase}: {elapsed_s}s, {completed} done, {errored} errors, "
                "{in_flight} in flight, {requests_per_second} req/s".format(**event)
            )

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def flat_stats(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flat ``{ttft_ms_p95: .., requests_per_second: ..}`` (for set_stats / AWX)."""
    out: dict[str, Any] = {}
    for dist in ("ttft_ms", "itl_ms", "tpot_ms", "latency_ms"):
        for s in STATS:
            out[f"{prefix}{dist.removesuffix('_ms')}_{s}_ms"] = metrics[dist].get(s)
    for key in (
        "requests_per_second",
        "output_tokens_per_second",
        "concurrency",
        "successful",
        "errored",
        "incomplete",
        "error_rate",
        "duration_s",
    ):
        out[f"{prefix}{key}"] = metrics[key]
    return out


async def _watch_cancel(cancel: threading.Event, task: asyncio.Task[Any]) -> None:
    """Cancel the benchmark's main task once another thread sets ``cancel`` (polled: the event
    is a thread primitive; 50 ms is prompt enough and costs the load nothing measurable)."""
    while not cancel.is_set():
        await asyncio.sleep(0.05)
    task.cancel()


async def _run_all(
    cfg: BenchmarkConfig,
    target: HttpTarget,
    source: PromptSource,
    phases: list[Phase],
    progress: _Progress,
    log: LogFn | None,
    cancel: threading.Event | None = None,
) -> list[dict[str, Any]]:
    ctx = make_ssl_context(cfg.validate_certs, cfg.ca_path) if target.scheme == "https" else None
    pool = Pool(target, cfg.timeout, ctx)
    results: list[dict[str, Any]] = []
    index = 0
    main = asyncio.current_task()
    watcher = (
        asyncio.ensure_future(_watch_cancel(cancel, main))
        if cancel is not None and main is not None
        else None
    )
    try:
        queue = list(phases)
        sweep_auto = cfg.profile == "sweep" and not cfg.rate
        while queue:
            phase = queue.pop(0)
            warm = _warmup_phase(cfg, phase)
            if warm is not None:
                rec, _t0, _t1 = await run_phase(
                    pool, source, warm, index, cfg.drain_timeout, cfg.seed, progress
                )
                index += len(rec)
            if log:
                log(f"llm_benchmark: phase {phase.name} starting")
            rec, t0, t_end = await run_phase(
                pool, source, phase, index, cfg.drain_timeout, cfg.seed + len(results), progress
            )
            index += len(rec)
            metrics = phase_metrics(rec, t0, t_end, cfg.stream)
            results.append(
                {
                    **phase.describe(),
                    "metrics": metrics,
                    "slo": evaluate_slo(cfg.slo, metrics) if cfg.slo else None,
                    "_records": rec,
                    "_t0": t0,
                }
            )
            if sweep_auto and len(results) == 2:
                lo = results[0]["metrics"]["requests_per_second"]
                hi = results[1]["metrics"]["requests_per_second"]
                if lo > 0 and hi > 0:
                    for r in sweep_rates(lo, hi, cfg.sweep_points):
                        queue.append(
                            Phase(
                                f"constant@{r:g}",
                                "constant",
                                None,
                                r,
                                cfg.max_requests,
                                cfg.max_seconds,
                            )
                        )
                elif log:
                    log("llm_benchmark: sweep stops: a reference phase had no successful request")
    finally:
        if watcher is not None:
            watcher.cancel()
        # Aborts every connection: cancelled requests stop at once, not when the server answers.
        pool.close()
    return results


def run_benchmark(
    cfg: BenchmarkConfig,
    log: LogFn | None = None,
    check_mode: bool = False,
    *,
    on_progress: EventFn | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run the configured benchmark; returns the result dict (see the module's RETURN).

    ``on_progress`` gets each progress event (a dict, ~1/s per phase and at each phase's end).
    Setting ``cancel`` (from another thread) stops the load within ~50 ms, aborting in-flight
    requests, and raises :class:`BenchmarkCancelled` instead of writing reports.
    """
    started = time.time()
    target = HttpTarget(cfg.base_url, cfg.api_key)
    rows = load_prompt_file(cfg.prompt_file) if cfg.prompt_file else None
    model, models = resolve_model(cfg, target)
    phases = plan_phases(cfg)
    path = _api_path(target, PATHS[cfg.endpoint])
    plan = {
        "url": target.url(path),
        "model": model,
        "endpoint": cfg.endpoint,
        "stream": cfg.stream,
        "profile": cfg.profile,
        "phases": [p.describe() for p in phases],
        "warmup": cfg.warmup,
        "sweep_points": cfg.sweep_points if cfg.profile == "sweep" and not cfg.rate else None,
        "prompts": (
            {"file": cfg.prompt_file, "rows": len(rows)}
            if rows is not None
            else {"synthetic_tokens": cfg.prompt_tokens}
        ),
        "output_tokens": cfg.output_tokens,
    }
    result: dict[str, Any] = {
        "model": model,
        "models_available": models,
        "plan": plan,
        "changed": False,
    }
    if check_mode:
        return result
    if cancel is not None and cancel.is_set():
        raise BenchmarkCancelled("benchmark cancelled before it sent any request")
    source = PromptSource(
        target.post_head(path),
        model,
        cfg.endpoint,
        cfg.stream,
        cfg.prompt_tokens or 128,
        cfg.output_tokens,
        cfg.seed,
        rows,
        cfg.extra_body,
    )
    progress = _Progress(cfg.report_dir, log, on_progress)
    t_start = perf_counter()
    try:
        phases_out = asyncio.run(_run_all(cfg, target, source, phases, progress, log, cancel))
    except asyncio.CancelledError:
        if cancel is not None and cancel.is_set():
            raise BenchmarkCancelled(
                f"benchmark cancelled after {perf_counter() - t_start:.1f}s; no report written"
            ) from None
        raise
    finally:
        progress.close()
    primary = _primary(cfg, phases_out)
    metrics = primary["metrics"]
    slo = _overall_slo(cfg, phases_out, primary)
    result.update(
        {
            "metrics": metrics,
            "stats": {**flat_stats(metrics), "slo_passed": slo["passed"] if slo else None},
            "benchmarks": [
                {k: v for k, v in b.items() if not k.startswith("_")} for b in phases_out
            ],
            "slo": slo,
            "duration_s": round(perf_counter() - t_start, 3),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "progress_file": progress.path,
        }
    )
    if cfg.report_dir:
        from .report import write_reports

        paths = write_reports(cfg, result, phases_out)
        result.update(paths)
        result["changed"] = True
    return result


def _primary(cfg: BenchmarkConfig, phases: list[dict[str, Any]]) -> dict[str, Any]:
    if cfg.profile != "sweep" or len(phases) == 1:
        return phases[0]
    return max(phases[1:], key=lambda b: b["metrics"]["requests_per_second"])


def _overall_slo(
    cfg: BenchmarkConfig, phases: list[dict[str, Any]], primary: dict[str, Any]
) -> dict[str, Any] | None:
    if not cfg.slo:
        return None
    if cfg.profile != "sweep":
        return primary["slo"]
    passing = [b for b in phases if b["slo"]["passed"]]
    best = max(passing, key=lambda b: b["metrics"]["requests_per_second"]) if passing else None
    return {
        "passed": best is not None,
        "violations": []
        if best
        else [f"{b['name']}: {v}" for b in phases for v in b["slo"]["violations"]],
        "checked": best["slo"]["checked"] if best else {},
        "best_phase": best["name"] if best else None,
        "max_requests_per_second_meeting_slo": (
            best["metrics"]["requests_per_second"] if best else None
        ),
    }


def records_of(phase: dict[str, Any]) -> Records:
    return phase["_records"]
