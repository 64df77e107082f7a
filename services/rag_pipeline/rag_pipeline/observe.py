"""Request observation (pure ASGI: duration to the last byte) and OpenTelemetry tracing.

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
import time
import uuid
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

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


class ObserveMiddleware:
    """One JSON log line, a request counter and a duration per request, measured until the last
    byte of the answer is sent (a streamed answer's whole stream, not its headers); adds
    ``x-request-id`` (the client's, or a new one)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex
        t0 = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - t0
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.request_latency.labels(path).observe(elapsed)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "path": scope.get("path", ""),
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
