"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag_pipeline import __version__
from rag_pipeline.dependencies import PipelineDep, require_api_key
from rag_pipeline.embeddings import EmbedderError
from rag_pipeline.models import Health, Readiness
from rag_pipeline.stores import StoreUnavailableError

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok", version=__version__)


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(pipeline: PipelineDep) -> Response:
    """Readiness: the vector store and the embedder both answer."""
    checks: dict[str, str] = {}
    ok = True
    try:
        pipeline.store.ping()
        checks["store"] = f"ok ({pipeline.store.kind})"
    except StoreUnavailableError as exc:
        ok, checks["store"] = False, str(exc)
    try:
        pipeline.embedder.check()
        checks["embedder"] = f"ok ({pipeline.embedder.name})"
    except EmbedderError as exc:
        ok, checks["embedder"] = False, str(exc)
    body = Readiness(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", dependencies=[Depends(require_api_key)], include_in_schema=False)
def metrics(request: Request) -> Response:
    registry = request.app.state.pipeline.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
