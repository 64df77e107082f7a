"""Liveness, readiness and metrics."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag_pipeline import __version__
from rag_pipeline.dependencies import require_metrics_access
from rag_pipeline.models import Health, Readiness

router = APIRouter(tags=["health"])


# Probes must not queue behind requests: /health runs on the event loop, and /ready's
# blocking checks get threads of their own instead of the shared pool that queries and
# ingestion fill up (40 waiting queries would otherwise starve the probes).
_PROBE_THREADS = 2


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok", version=__version__)


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(request: Request) -> Response:
    """Readiness: the vector store answers and the embedder is loaded. Cheap (no embedding,
    result reused for READY_CACHE_S): it is unauthenticated and polled by Kubernetes."""
    # Not the PipelineDep dependency: a sync dependency would itself need a pool thread.
    pipeline = request.app.state.pipeline
    limiter = getattr(request.app.state, "probe_limiter", None)
    if limiter is None:  # made on the app's event loop, once
        limiter = request.app.state.probe_limiter = anyio.CapacityLimiter(_PROBE_THREADS)
    ok, checks = await anyio.to_thread.run_sync(pipeline.readiness, limiter=limiter)
    body = Readiness(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", dependencies=[Depends(require_metrics_access)], include_in_schema=False)
def metrics(request: Request) -> Response:
    registry = request.app.state.pipeline.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
