"""Prometheus metrics, one registry per app so several apps can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "rag_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.stage_latency = Histogram(
            "rag_stage_duration_seconds",
            "Pipeline stage latency",
            ["operation", "stage"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.documents = Counter(
            "rag_ingested_documents_total",
            "Documents ingested",
            ["status"],
            registry=self.registry,
        )
        self.chunks = Counter("rag_ingested_chunks_total", "Chunks written", registry=self.registry)
        # reason: llm_error, deadline (LLM_TIMEOUT_S) or empty_answer; each answered
        # extractively instead.
        self.generation_errors = Counter(
            "rag_generation_errors_total",
            "Failed LLM calls, by reason",
            ["reason"],
            registry=self.registry,
        )

        self.reindex_running = Gauge(
            "rag_reindex_running", "Re-index jobs running", registry=self.registry
        )
        self.reindexed_documents = Counter(
            "rag_reindexed_documents_total",
            "Documents re-chunked and re-embedded by re-index jobs",
            registry=self.registry,
        )
        self.reindex_jobs = Counter(
            "rag_reindex_jobs_total",
            "Finished re-index jobs, by outcome (succeeded, failed)",
            ["state"],
            registry=self.registry,
        )

    def observe_stages(self, operation: str, latency_ms: dict[str, float]) -> None:
        for stage, ms in latency_ms.items():
            self.stage_latency.labels(operation, stage).observe(ms / 1000.0)
