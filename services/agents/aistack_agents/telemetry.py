"""OpenTelemetry: the SDK tracer provider always; exporters only when configured.

One tracing path for every backend: the spans of a run (a root span per run, one child per
node) go over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (a collector) and, when
MLFLOW_TRACKING_URI is set, to MLflow's own OTLP ingestion (``<tracking URI>/v1/traces`` with
the ``x-mlflow-experiment-id`` header: MLflow >= 3.6 with a SQL backend store), so the agents
need no mlflow package.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Sequence

import httpx
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from aistack_agents.settings import Settings

log = logging.getLogger(__name__)

MLFLOW_TRACES_PATH = "/v1/traces"
MLFLOW_EXPERIMENT_HEADER = "x-mlflow-experiment-id"

_provider: TracerProvider | None = None


class MlflowError(RuntimeError):
    """MLflow could not be reached or refused to name the experiment."""


def mlflow_auth_headers() -> dict[str, str]:
    """The MLflow client's own credentials variables: a bearer token or basic auth."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    if user and password:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {}


def resolve_experiment(
    tracking_uri: str, name: str, headers: dict[str, str], timeout_s: float = 10.0
) -> str:
    """The id of experiment ``name`` through MLflow's REST API, created when missing."""
    api = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/experiments"
    try:
        with httpx.Client(timeout=timeout_s, headers=headers) as http:
            for _ in range(2):  # a concurrent creator wins: read it back once
                found = http.get(f"{api}/get-by-name", params={"experiment_name": name})
                if found.status_code == 200:
                    return str(found.json()["experiment"]["experiment_id"])
                if found.status_code != 404:
                    raise MlflowError(f"{found.request.url}: HTTP {found.status_code}")
                made = http.post(f"{api}/create", json={"name": name})
                if made.status_code == 200:
                    return str(made.json()["experiment_id"])
                if "RESOURCE_ALREADY_EXISTS" not in made.text:
                    raise MlflowError(f"{made.request.url}: HTTP {made.status_code} {made.text}")
    except httpx.HTTPError as exc:
        raise MlflowError(f"{tracking_uri}: {type(exc).__name__}: {exc}") from exc
    raise MlflowError(f"experiment {name!r} could neither be found nor created")


class MlflowSpanExporter(SpanExporter):
    """OTLP/HTTP to MLflow's trace ingestion. The experiment is resolved (or created) on the
    first export, and again after a failure: an MLflow that comes up after the agents costs the
    spans sent before, never a run (tracing must not break an answer)."""

    def __init__(self, tracking_uri: str, experiment_id: str | None, experiment_name: str) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self.experiment_id = experiment_id
        self.experiment_name = experiment_name
        self._headers = mlflow_auth_headers()
        self._otlp: SpanExporter | None = None
        self._lock = threading.Lock()

    def _exporter(self) -> SpanExporter:
        with self._lock:
            if self._otlp is None:
                # Imported here: the exporter is an optional extra (aistack-agents[otlp]).
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                if self.experiment_id is None:
                    self.experiment_id = resolve_experiment(
                        self.tracking_uri, self.experiment_name, self._headers
                    )
                self._otlp = OTLPSpanExporter(
                    endpoint=self.tracking_uri + MLFLOW_TRACES_PATH,
                    headers={**self._headers, MLFLOW_EXPERIMENT_HEADER: self.experiment_id},
                )
            return self._otlp

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            exporter = self._exporter()
        except MlflowError as exc:
            log.warning("MLflow tracing: %s; %d spans not sent", exc, len(spans))
            return SpanExportResult.FAILURE
        return exporter.export(spans)

    def shutdown(self) -> None:
        if self._otlp is not None:
            self._otlp.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing buffered here: the BatchSpanProcessor holds the spans


def setup_tracing(
    service_name: str = "aistack-agents", settings: Settings | None = None
) -> TracerProvider:
    """Installs (once) an SDK tracer provider. Spans leave the process only when
    OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) or MLFLOW_TRACKING_URI is set."""
    global _provider
    if _provider is not None:
        return _provider
    settings = settings or Settings()
    # OTEL_SERVICE_NAME (set by the agents role per Deployment) wins over the default.
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if settings.mlflow_tracking_uri:
        provider.add_span_processor(
            BatchSpanProcessor(
                MlflowSpanExporter(
                    settings.mlflow_tracking_uri,
                    settings.mlflow_experiment_id,
                    settings.mlflow_experiment_name,
                )
            )
        )
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def tracer() -> trace.Tracer:
    return trace.get_tracer("aistack_agents")


def trace_id_of(span: trace.Span) -> str | None:
    """The span's trace id as 32 hex digits (MLflow names the trace ``tr-<id>``), or None when
    no SDK provider records it."""
    ctx = span.get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None
