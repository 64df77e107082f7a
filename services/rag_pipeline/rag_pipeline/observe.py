"""Request observation (metrics and log line to the last byte, x-request-id) and OpenTelemetry
tracing.

Tracing is off unless an OTLP endpoint is configured with the standard variables
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``;
``OTEL_SDK_DISABLED=true`` turns it off again). Then the SDK exports over OTLP/HTTP
(protobuf) and reads every other ``OTEL_*`` variable itself (headers, timeout,
``OTEL_SERVICE_NAME``, resource attributes, sampler, batch settings). FastAPI's
instrumentation makes the server span; the pipeline adds a span per stage (embed, search,
rerank, generate) below it.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

from rag_pipeline.body_limit import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rag_pipeline.metrics import Metrics

log = logging.getLogger("rag_pipeline.http")

TRACER_NAME = "rag_pipeline"
SERVICE_NAME = "rag-pipeline"


def tracing_configured(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def setup_tracing(app: FastAPI) -> Any | None:
    """Instrument ``app`` and return its TracerProvider (shut down with the app), or None when
    tracing is not configured. A provider of its own per app (not the process-global one), so
    several apps (tests, tools) can live in one process."""
    if not tracing_configured():
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:  # the [otel] extra is not installed: say so, keep serving
        log.error(
            "OTEL_EXPORTER_OTLP_*ENDPOINT is set but tracing needs pip install "
            "'rag-pipeline[otel]' (%s); tracing is off",
            exc,
        )
        return None
    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES first; rag-pipeline when neither names one.
    resource = Resource.create({})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    # /health, /ready and /metrics are polled: no trace per probe or scrape.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="health,ready,metrics"
    )
    log.info("OpenTelemetry tracing on", extra={"otlp_endpoint": _endpoint()})
    return provider


def _endpoint() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )


def get_tracer(provider: Any | None) -> trace.Tracer:
    """The pipeline's tracer: the app's provider, else the global one (a no-op unless the
    embedding process installed one)."""
    if provider is not None:
        return provider.get_tracer(TRACER_NAME)  # type: ignore[no-any-return]
    return trace.get_tracer(TRACER_NAME)


class RequestIdMiddleware:
    """Adds ``x-request-id`` to every answer (the client's, or a new one) and keeps it in the
    request's state for the log line. Hand-written: a header, not worth a dependency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


def observe(app: FastAPI, metrics: Metrics) -> None:
    """One JSON log line, a request counter and a duration per request, measured by
    prometheus-fastapi-instrumentator's middleware until the last byte of the answer is sent (a
    streamed answer's whole stream, not its headers). Call it after every other middleware is
    added: it is then the outermost and counts every answer (a 413 of the body limit too)."""
    app.add_middleware(RequestIdMiddleware)

    def record(info: Info) -> None:
        # Grouped as "none" by the library when no route matched; "unmatched" in our series.
        route = "unmatched" if info.modified_handler == "none" else info.modified_handler
        metrics.requests.labels(info.method, route, info.modified_status).inc()
        metrics.request_latency.labels(route).observe(info.modified_duration)
        scope = info.request.scope
        log.info(
            "request",
            extra={
                "request_id": scope.get("state", {}).get("request_id", ""),
                "method": info.method,
                "path": scope.get("path", ""),
                "status": int(info.modified_status),
                "duration_ms": round(info.modified_duration * 1000, 2),
            },
        )

    # Status codes as they are (5.., not 5xx): the alert rules and dashboards select on them.
    instrumentator = Instrumentator(should_group_status_codes=False, registry=metrics.registry)
    instrumentator.add(record).instrument(app)
