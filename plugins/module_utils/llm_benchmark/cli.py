# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Standalone entry point (no Ansible needed), e.g. in a Kubernetes Job writing to a PVC.

    python -m llm_benchmark --config /config/bench.yaml --report-dir /results/run-1

The config file (JSON, or YAML when PyYAML is installed) holds the module's options. The
result JSON goes to stdout (or ``--output``), progress lines to stderr. Exit status: 0 done
(SLO met or none set), 2 SLO missed, 1 could not run (bad config, endpoint unreachable).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .config import BenchmarkConfig, ConfigError
from .runner import BenchmarkError, run_benchmark

__all__ = ["load_config", "main", "run"]


def load_config(path: str) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise ConfigError(f"{path}: YAML needs PyYAML; use a JSON config instead") from None
        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option -> value")
    return data


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="llm_benchmark", description="Load-test an OpenAI-compatible endpoint."
    )
    ap.add_argument("--config", "-c", help="JSON/YAML file with the module's options")
    ap.add_argument("--base-url", help="override base_url")
    ap.add_argument("--model", help="override model")
    ap.add_argument("--report-dir", help="override report_dir")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override one option, value parsed as JSON (e.g. --set concurrency=8)",
    )
    ap.add_argument("--check", action="store_true", help="only check the endpoint, send no load")
    ap.add_argument("--output", "-o", help="write the result JSON here instead of stdout")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    try:
        opts: dict[str, Any] = load_config(args.config) if args.config else {}
        for key in ("base_url", "model", "report_dir"):
            if getattr(args, key) is not None:
                opts[key] = getattr(args, key)
        for item in args.set:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
            try:
                opts[key] = json.loads(raw)
            except ValueError:
                opts[key] = raw
        cfg = BenchmarkConfig.from_dict(opts)
        log = None if args.quiet else _err
        result = run_benchmark(cfg, log=log, check_mode=args.check)
    except (ConfigError, BenchmarkError, OSError, ValueError) as exc:
        _err(f"llm_benchmark: error: {exc}")
        return 1
    text = json.dumps(result, indent=1, default=str)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    slo = result.get("slo")
    if slo and not slo["passed"]:
        _err("llm_benchmark: SLO missed: " + "; ".join(slo["violations"]))
        return 2
    return 0


def run() -> None:
    """Console entry point: exit with :func:`main`'s status."""
    raise SystemExit(main())
