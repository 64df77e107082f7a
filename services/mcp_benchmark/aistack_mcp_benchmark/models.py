"""Typed tool results: the SDK publishes their JSON schemas as the tools' output schemas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class PhaseSummary(BaseModel):
    name: str
    requests_per_second: float | None = None
    output_tokens_per_second: float | None = None
    successful: int | None = None
    errored: int | None = None
    incomplete: int | None = None
    ttft_p95_ms: float | None = None
    latency_p95_ms: float | None = None
    slo_passed: bool | None = None


class BenchmarkSummary(BaseModel):
    """One benchmark run: where it ran, its phases, the primary phase's figures and SLO."""

    run_id: str
    label: str | None = None
    started: str | None = Field(None, description="UTC, ISO 8601")
    duration_s: float | None = None
    target_url: str | None = Field(None, description="The URL the load went to")
    model: str | None = None
    profile: str | None = None
    phases: list[PhaseSummary] = Field(default_factory=list)
    stats: dict[str, float | int | bool | None] = Field(
        default_factory=dict,
        description="The primary phase's figures, flat (ttft_p95_ms, requests_per_second, ...)",
    )
    slo_passed: bool | None = Field(None, description="null when no SLO was set")
    slo_violations: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list, description="Files in the run's folder")
    html_report_uri: str | None = Field(None, description="MCP resource: the HTML report")
    json_report_uri: str | None = Field(
        None, description="MCP resource: the engine's full JSON report (every request)"
    )


class BenchmarkEntry(BaseModel):
    run_id: str
    label: str | None = None
    started: str | None = None
    model: str | None = None
    profile: str | None = None
    requests_per_second: float | None = None
    slo_passed: bool | None = None
    html_report_uri: str | None = None


class BenchmarkList(BaseModel):
    results_dir: str
    total: int = Field(description="Runs found (runs lists the newest `limit` of them)")
    runs: list[BenchmarkEntry]


class RagSource(BaseModel):
    document_id: str
    chunk_index: int
    text: str
    score: float
    rerank_score: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RagAnswer(BaseModel):
    answer: str
    answer_mode: Literal["generated", "extractive", "none"]
    collection: str
    sources: list[RagSource]
    generation_error: str | None = None
    fallback_reason: str | None = None
    latency_ms: dict[str, float] = Field(default_factory=dict)


class RagIngestResult(BaseModel):
    collection: str
    document_id: str
    status: Literal["created", "updated", "unchanged"]
    chunks_created: int
    content_hash: str


class RagCollection(BaseModel):
    name: str
    chunks: int


class RagCollections(BaseModel):
    collections: list[RagCollection]
