"""Benchmark runs on the results volume, and the bridge to the llm_benchmark engine.

The engine (plugins/module_utils/llm_benchmark, stdlib only) is imported as the top-level
package ``llm_benchmark``: the image copies it in under that name; in a checkout
plugins/module_utils goes on PYTHONPATH (its imports are all relative, so both work).

Layout: ``RESULTS_DIR/<run-id>/`` holds ``llm_benchmark.json`` and ``llm_benchmark.html``
(the engine's reports), ``progress.jsonl`` and ``summary.json`` (:class:`BenchmarkSummary`).
A run is written into ``RESULTS_DIR/.partial-<run-id>/`` and renamed when complete, so a
failed or cancelled run leaves nothing behind and a reader never sees half a run. Folders
written by the llm_benchmark role's Kubernetes Job (``--report-dir /results/<job>``) are
listed too: their summary is derived from ``llm_benchmark.json``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llm_benchmark.config import BenchmarkConfig, ConfigError
from llm_benchmark.runner import BenchmarkCancelled, BenchmarkError, run_benchmark

from .models import BenchmarkEntry, BenchmarkSummary, PhaseSummary

__all__ = [
    "BenchmarkCancelled",
    "BenchmarkConfig",
    "BenchmarkError",
    "ConfigError",
    "RunError",
    "execute",
    "list_runs",
    "load_summary",
    "new_run_id",
    "report_file",
]

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PARTIAL = ".partial-"
SUMMARY = "summary.json"
REPORT_JSON = "llm_benchmark.json"
REPORT_HTML = "llm_benchmark.html"
URI = "benchmark://runs/{run_id}/{name}"


class RunError(Exception):
    """A run that does not exist, or a results folder that cannot be read or written."""


def new_run_id(profile: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{profile}-{secrets.token_hex(3)}"


def run_dir(results_dir: Path, run_id: str) -> Path:
    """The folder of ``run_id``; refuses names that could leave RESULTS_DIR."""
    if not RUN_ID.match(run_id) or run_id.startswith(PARTIAL):
        raise RunError(
            f"invalid run_id {run_id!r}: letters, digits, '.', '_' and '-' (list_benchmarks "
            "shows the run ids)"
        )
    path = results_dir / run_id
    if not (path / SUMMARY).is_file() and not (path / REPORT_JSON).is_file():
        raise RunError(f"no benchmark run {run_id!r} in {results_dir} (see list_benchmarks)")
    return path


def report_file(results_dir: Path, run_id: str, name: str) -> str:
    path = run_dir(results_dir, run_id) / name
    if not path.is_file():
        raise RunError(f"run {run_id!r} has no {name}")
    return path.read_text(encoding="utf-8")


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def summarize(
    run_id: str, doc: dict[str, Any], folder: Path, label: str | None
) -> BenchmarkSummary:
    """The summary of the engine's result (``run_benchmark``'s dict or its llm_benchmark.json)."""
    phases = []
    for b in doc.get("benchmarks") or []:
        m = b.get("metrics") or {}
        slo = b.get("slo") or None
        phases.append(
            PhaseSummary(
                name=str(b.get("name")),
                requests_per_second=_num(m.get("requests_per_second")),
                output_tokens_per_second=_num(m.get("output_tokens_per_second")),
                successful=_int(m.get("successful")),
                errored=_int(m.get("errored")),
                incomplete=_int(m.get("incomplete")),
                ttft_p95_ms=_num((m.get("ttft_ms") or {}).get("p95")),
                latency_p95_ms=_num((m.get("latency_ms") or {}).get("p95")),
                slo_passed=slo.get("passed") if isinstance(slo, dict) else None,
            )
        )
    slo = doc.get("slo") if isinstance(doc.get("slo"), dict) else None
    files = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    plan = doc.get("plan") or {}
    stats = {
        k: v for k, v in (doc.get("stats") or {}).items() if v is None or isinstance(v, int | float)
    }
    return BenchmarkSummary(
        run_id=run_id,
        label=label,
        started=doc.get("started"),
        duration_s=_num(doc.get("duration_s")),
        target_url=plan.get("url"),
        model=doc.get("model"),
        profile=plan.get("profile"),
        phases=phases,
        stats=stats,
        slo_passed=slo.get("passed") if slo else None,
        slo_violations=[str(v) for v in (slo or {}).get("violations", [])],
        files=files,
        html_report_uri=URI.format(run_id=run_id, name=REPORT_HTML)
        if REPORT_HTML in files
        else None,
        json_report_uri=URI.format(run_id=run_id, name=REPORT_JSON)
        if REPORT_JSON in files
        else None,
    )


def load_summary(results_dir: Path, run_id: str) -> BenchmarkSummary:
    folder = run_dir(results_dir, run_id)
    try:
        if (folder / SUMMARY).is_file():
            return BenchmarkSummary.model_validate_json((folder / SUMMARY).read_text("utf-8"))
        doc = json.loads((folder / REPORT_JSON).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"run {run_id!r}: unreadable report: {exc}") from None
    if not isinstance(doc, dict):
        raise RunError(f"run {run_id!r}: {REPORT_JSON} is not a JSON object")
    return summarize(run_id, doc, folder, None)


def list_runs(results_dir: Path) -> list[BenchmarkEntry]:
    """Every complete run, newest first (runs that cannot be read are skipped)."""
    if not results_dir.is_dir():
        return []
    entries = []
    for folder in results_dir.iterdir():
        if not folder.is_dir() or not RUN_ID.match(folder.name) or folder.name.startswith("."):
            continue
        try:
            s = load_summary(results_dir, folder.name)
        except RunError:
            continue
        entries.append(
            BenchmarkEntry(
                run_id=s.run_id,
                label=s.label,
                started=s.started,
                model=s.model,
                profile=s.profile,
                requests_per_second=_num(s.stats.get("requests_per_second")),
                slo_passed=s.slo_passed,
                html_report_uri=s.html_report_uri,
            )
        )
    entries.sort(key=lambda e: (e.started or "", e.run_id), reverse=True)
    return entries


def execute(
    results_dir: Path,
    run_id: str,
    options: dict[str, Any],
    label: str | None,
    on_progress: Callable[[dict[str, Any]], None],
    cancel: threading.Event,
) -> BenchmarkSummary:
    """Run the benchmark (blocking: a worker thread) into a partial folder, then publish it.

    Raises ConfigError, BenchmarkError (BenchmarkCancelled) or RunError; then nothing is left.
    """
    staging = results_dir / f"{PARTIAL}{run_id}"
    final = results_dir / run_id
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise RunError(f"RESULTS_DIR {results_dir} is not writable: {exc}") from None
    try:
        cfg = BenchmarkConfig.from_dict({**options, "report_dir": str(staging)})
        result = run_benchmark(cfg, on_progress=on_progress, cancel=cancel)
        if cancel.is_set():  # cancelled while the reports were being written
            raise BenchmarkCancelled("benchmark cancelled; no report kept")
        summary = summarize(run_id, result, staging, label)
        summary.files = sorted({*summary.files, SUMMARY})
        (staging / SUMMARY).write_text(summary.model_dump_json(indent=1), encoding="utf-8")
        # The engine's JSON names its report_dir and progress file: the folder they end up in.
        report = staging / REPORT_JSON
        report.write_text(
            report.read_text("utf-8").replace(str(staging), str(final)), encoding="utf-8"
        )
        os.rename(staging, final)
        return summary
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
