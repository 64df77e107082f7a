"""Prometheus metrics of the server (own registry: one per app, no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tool_calls = Counter(
            "mcp_tool_calls_total",
            "MCP tool calls by tool and outcome (ok, error, cancelled)",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.tool_errors = Counter(
            "mcp_tool_errors_total",
            "MCP tool calls answered with a tool error (bad input, target unreachable, ...)",
            ["tool"],
            registry=self.registry,
        )
        self.tool_duration = Histogram(
            "mcp_tool_duration_seconds",
            "MCP tool call duration",
            ["tool"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.runs_in_progress = Gauge(
            "mcp_benchmark_runs_in_progress",
            "Benchmark runs whose load is running now",
            registry=self.registry,
        )
