# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark configuration: one validator for the Ansible module and the standalone CLI."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "PROFILES",
    "SLO_KEYS",
    "BenchmarkConfig",
    "ConfigError",
    "evaluate_slo",
]

PROFILES = ("synchronous", "concurrent", "constant", "poisson", "sweep")
ENDPOINTS = ("chat", "completions")
_DIST = ("ttft", "itl", "tpot", "latency")
_STAT = ("mean", "p50", "p90", "p95", "p99", "max")
# key -> (metric, direction): "max" means value must be <= threshold, "min" means >=
SLO_KEYS: dict[str, tuple[str, str]] = {
    f"{d}_{s}_ms": (f"{d}_ms.{s}", "max") for d in _DIST for s in _STAT
} | {
    "error_rate": ("error_rate", "max"),
    "max_incomplete": ("incomplete", "max"),
    "min_requests_per_second": ("requests_per_second", "min"),
    "min_output_tokens_per_second": ("output_tokens_per_second", "min"),
    "min_successful": ("successful", "min"),
}


class ConfigError(ValueError):
    """Bad option value or combination."""


@dataclass
class BenchmarkConfig:
    base_url: str
    api_key: str | None = None
    model: str | None = None
    endpoint: str = "chat"
    stream: bool = True
    profile: str = "concurrent"
    concurrency: int | None = None
    rampup: float = 0.0
    rate: list[float] | None = None
    max_requests: int | None = None
    max_seconds: float | None = None
    warmup: dict[str, Any] | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    prompt_file: str | None = None
    seed: int = 42
    slo: dict[str, float] = field(default_factory=dict)
    report_dir: str | None = None
    timeout: float = 120.0
    drain_timeout: float = 10.0
    sweep_points: int = 5
    extra_body: dict[str, Any] = field(default_factory=dict)
    validate_certs: bool = True
    ca_path: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
        if not data.get("base_url"):
            raise ConfigError("base_url is required")
        clean = {k: v for k, v in data.items() if v is not None}
        cfg = cls(**clean)
        cfg.validate()
        return cfg

    # -- validation ---------------------------------------------------------------------
    def validate(self) -> None:
        if not re.match(r"^https?://[^/\s]+", str(self.base_url)):
            raise ConfigError(f"base_url must be an http:// or https:// URL, got {self.base_url!r}")
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"endpoint must be one of {', '.join(ENDPOINTS)}")
        if self.profile not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}")
        self.stream = _bool(self.stream, "stream")
        self.validate_certs = _bool(self.validate_certs, "validate_certs")
        self.concurrency = _int(self.concurrency, "concurrency", 1)
        self.max_requests = _int(self.max_requests, "max_requests", 1)
        self.max_seconds = _num(self.max_seconds, "max_seconds", positive=True)
        self.prompt_tokens = _int(self.prompt_tokens, "prompt_tokens", 1)
        self.output_tokens = _int(self.output_tokens, "output_tokens", 1)
        self.seed = _int(self.seed, "seed", 0) or 0
        self.timeout = _num(self.timeout, "timeout", positive=True) or 120.0
        self.drain_timeout = _num(self.drain_timeout, "drain_timeout") or 0.0
        self.rampup = _num(self.rampup, "rampup") or 0.0
        self.sweep_points = _int(self.sweep_points, "sweep_points", 1) or 5
        if self.rate is not None:
            rates = self.rate if isinstance(self.rate, list | tuple) else [self.rate]
            self.rate = [_num(r, "rate", positive=True) or 0.0 for r in rates]
            if not self.rate:
                self.rate = None
        p = self.profile
        if p == "synchronous" and self.concurrency not in (None, 1):
            raise ConfigError("profile synchronous sends one request at a time: drop concurrency")
        if p == "concurrent" and self.concurrency is None:
            raise ConfigError("profile concurrent requires concurrency")
        if self.rampup and p in ("synchronous", "constant", "poisson"):
            raise ConfigError(
                f"rampup spreads the start of concurrent streams; profile {p} does not use it "
                "(use concurrent, or sweep for its throughput phase)"
            )
        if self.rampup and p == "sweep" and self.rate:
            raise ConfigError("rampup applies to a sweep's throughput phase, which rate replaces")
        if p in ("synchronous", "concurrent") and self.rate:
            raise ConfigError(f"rate is not used with profile {p}; use constant, poisson or sweep")
        if p in ("constant", "poisson"):
            if not self.rate:
                raise ConfigError(f"profile {p} requires rate (requests per second)")
            if len(self.rate) != 1:
                raise ConfigError(f"profile {p} takes a single rate; a list of rates needs sweep")
        if self.max_requests is None and self.max_seconds is None:
            raise ConfigError("set max_requests and/or max_seconds to bound the benchmark")
        if self.prompt_file and self.prompt_tokens is not None:
            raise ConfigError("prompt_tokens and prompt_file are mutually exclusive")
        if self.prompt_tokens is None:
            self.prompt_tokens = 128
        if self.warmup:
            if not isinstance(self.warmup, dict):
                raise ConfigError("warmup must be a dict with requests or seconds")
            w = {k: v for k, v in self.warmup.items() if v is not None}
            bad = sorted(set(w) - {"requests", "seconds"})
            if bad:
                raise ConfigError(f"warmup accepts requests or seconds, not {', '.join(bad)}")
            if len(w) > 1:
                raise ConfigError("warmup: requests and seconds are mutually exclusive")
            if "requests" in w:
                w["requests"] = _int(w["requests"], "warmup.requests", 0)
            if "seconds" in w:
                w["seconds"] = _num(w["seconds"], "warmup.seconds")
            self.warmup = w if any(w.values()) else None
        else:
            self.warmup = None
        if not isinstance(self.slo, dict):
            raise ConfigError("slo must be a dict of threshold name -> number")
        slo: dict[str, float] = {}
        for key, value in self.slo.items():
            if key not in SLO_KEYS:
                raise ConfigError(
                    f"unknown slo key {key!r}; use <ttft|itl|tpot|latency>_<mean|p50|p90|p95|"
                    "p99|max>_ms, error_rate, max_incomplete, min_requests_per_second, "
                    "min_output_tokens_per_second or min_successful"
                )
            num = _num(value, f"slo.{key}")
            if num is None:
                continue
            slo[key] = num
        if not self.stream and any(k.startswith("itl_") for k in slo):
            raise ConfigError("slo on itl needs stream: true (no inter-token timing otherwise)")
        self.slo = slo
        if not isinstance(self.extra_body, dict):
            raise ConfigError("extra_body must be a dict")

    def public(self) -> dict[str, Any]:
        """The configuration without secrets (for reports and return values)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if out.get("api_key"):
            out["api_key"] = "********"
        return out


def _bool(v: Any, name: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
        return v.lower() in ("true", "yes", "1", "on")
    raise ConfigError(f"{name} must be a boolean")


def _int(v: Any, name: str, minimum: int) -> int | None:
    if v is None:
        return None
    try:
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError
        n = int(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an integer, got {v!r}") from None
    if n < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {n}")
    return n


def _num(v: Any, name: str, positive: bool = False) -> float | None:
    if v is None:
        return None
    try:
        if isinstance(v, bool):
            raise ValueError
        x = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(x):
        raise ConfigError(f"{name} must be a finite number, got {v!r}")
    if x < 0 or (positive and x == 0):
        raise ConfigError(f"{name} must be {'> 0' if positive else '>= 0'}, got {v!r}")
    return x


def _lookup(metrics: dict[str, Any], path: str) -> Any:
    cur: Any = metrics
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def evaluate_slo(slo: dict[str, float], metrics: dict[str, Any]) -> dict[str, Any]:
    """``{passed, violations: [..], checked: {key: {threshold, value, passed}}}``.

    A latency threshold on a phase with no successful request is a violation (no evidence).
    """
    violations: list[str] = []
    checked: dict[str, Any] = {}
    for key, threshold in slo.items():
        path, direction = SLO_KEYS[key]
        value = _lookup(metrics, path)
        if value is None:
            ok = False
            violations.append(f"{key}: no successful request to measure (threshold {threshold:g})")
        elif direction == "max":
            ok = value <= threshold
            if not ok:
                violations.append(f"{key}: {value:g} > {threshold:g}")
        else:
            ok = value >= threshold
            if not ok:
                violations.append(f"{key}: {value:g} < {threshold:g}")
        checked[key] = {"threshold": threshold, "value": value, "passed": ok}
    return {"passed": not violations, "violations": violations, "checked": checked}
