"""Prometheus metrics of the agents (served at /metrics by the A2A server)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RUNS = Counter(
    "agents_runs_total",
    "Workflow runs by workflow, route and outcome (ok, llm_error, no_llm)",
    ["workflow", "route", "outcome"],
)
NODE_SECONDS = Histogram(
    "agents_node_duration_seconds",
    "Time spent in one graph node",
    ["workflow", "node"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LLM_TOKENS = Counter(
    "agents_llm_tokens_total",
    "Tokens reported by the LLM's usage field, by node and kind (prompt, completion)",
    ["workflow", "node", "kind"],
)
QUALITY_CHECKS = Counter(
    "agents_quality_checks_total",
    "Quality self-evaluations by result (passed true/false)",
    ["workflow", "passed"],
)
QUALITY_PASS_RATE = Gauge(
    "agents_quality_pass_rate",
    "Share of quality checks passed since the process started (0-1)",
    ["workflow"],
)
PARSE_FALLBACKS = Counter(
    "agents_parse_fallbacks_total",
    "Unparseable LLM output: retried with a stricter prompt, or replaced by the default",
    ["workflow", "node", "outcome"],
)


# (passed, total) per workflow, for the pass-rate gauge (PromQL can derive it from the counter
# too; the gauge is for dashboards that read one number).
_quality: dict[str, tuple[int, int]] = {}


def record_quality(workflow: str, passed: bool) -> None:
    QUALITY_CHECKS.labels(workflow, str(passed).lower()).inc()
    ok, total = _quality.get(workflow, (0, 0))
    ok, total = ok + int(passed), total + 1
    _quality[workflow] = (ok, total)
    QUALITY_PASS_RATE.labels(workflow).set(ok / total)
