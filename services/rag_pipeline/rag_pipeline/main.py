"""FastAPI application factory."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rag_pipeline import __version__
from rag_pipeline.body_limit import BodyLimitMiddleware
from rag_pipeline.dependencies import require_api_key
from rag_pipeline.embeddings import Embedder, EmbedderError
from rag_pipeline.logging_setup import configure_logging
from rag_pipeline.observe import get_tracer, observe, setup_tracing
from rag_pipeline.pipeline import InvalidInputError, Pipeline, ReindexConflictError
from rag_pipeline.routers import collections, documents, health, ingest, layout, openai, query
from rag_pipeline.settings import Settings
from rag_pipeline.stores import (
    CollectionMismatchError,
    CollectionNotFoundError,
    StoreUnavailableError,
)

log = logging.getLogger("rag_pipeline.http")

# A validation error echoes at most this much of a string it rejects (never whole documents).
ECHO_CHARS = 100


def printable(text: str, limit: int | None = None) -> str:
    """``text`` as valid UTF-8 (a lone surrogate becomes the six characters ``\\ud800``),
    cut to ``limit`` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _scalar(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN/Infinity
    return printable(value if isinstance(value, str) else str(value), ECHO_CHARS)


def render_validation_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """One pydantic error as JSON that can always be encoded: type, loc (the field), msg, the
    rejected input when it is a scalar (cut to ECHO_CHARS), ctx."""
    out: dict[str, Any] = {
        "type": _scalar(error.get("type")),
        "loc": [_scalar(part) for part in error.get("loc", ())],
        "msg": printable(str(error.get("msg", ""))),
    }
    value = error.get("input")
    if value is None or isinstance(value, str | int | float):
        out["input"] = _scalar(value)
    ctx = error.get("ctx")
    if isinstance(ctx, Mapping):
        out["ctx"] = {str(k): _scalar(v) for k, v in ctx.items()}
    return out


def create_app(
    settings: Settings | None = None,
    *,
    pipeline: Pipeline | None = None,
    embedder: Embedder | None = None,
) -> FastAPI:
    """Build the app. ``pipeline``/``embedder`` let tests and tools share loaded components."""
    # A pipeline passed in belongs to the caller; one built here is closed at shutdown.
    owns_pipeline = pipeline is None
    if pipeline is None:
        pipeline = Pipeline.from_settings(settings or Settings(), embedder=embedder)
    settings = pipeline.settings
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info(
            "rag-pipeline started",
            extra={"store": pipeline.store.kind, "strategy": settings.embedding_strategy},
        )
        yield
        if provider is not None:
            provider.shutdown()  # exports the spans still queued
        if owns_pipeline:
            pipeline.close()

    app = FastAPI(
        title="aistack RAG pipeline",
        version=__version__,
        description="Ingest documents and answer questions with cited sources.",
        lifespan=lifespan,
    )
    app.state.pipeline = pipeline
    provider = setup_tracing(app)
    pipeline.tracer = get_tracer(provider)
    auth = [Depends(require_api_key)]
    app.include_router(health.router)
    for module in (ingest, query, documents, collections, layout, openai):
        app.include_router(module.router, dependencies=auth)

    def _error(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": printable(detail)}, status_code=status)

    # Replaces FastAPI's handler, which fails (500) on an input it cannot encode, echoes whole
    # bodies back and is not the place to log them: nothing here is logged.
    @app.exception_handler(RequestValidationError)
    async def _unprocessable(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [render_validation_error(e) for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StoreUnavailableError)
    async def _store_down(_: Request, exc: StoreUnavailableError) -> JSONResponse:
        return _error(503, f"vector store unavailable: {exc}")

    @app.exception_handler(EmbedderError)
    async def _embedder_down(_: Request, exc: EmbedderError) -> JSONResponse:
        return _error(503, f"embedder unavailable: {exc}")

    @app.exception_handler(CollectionNotFoundError)
    async def _not_found(_: Request, exc: CollectionNotFoundError) -> JSONResponse:
        return _error(404, str(exc.args[0] if exc.args else exc))

    @app.exception_handler(CollectionMismatchError)
    async def _mismatch(_: Request, exc: CollectionMismatchError) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(ReindexConflictError)
    async def _conflict(_: Request, exc: ReindexConflictError) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(InvalidInputError)
    async def _invalid(_: Request, exc: InvalidInputError) -> JSONResponse:
        return _error(422, str(exc))

    # Added before observe, so it runs inside it: a 413 is logged and counted like any answer.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)

    # Outermost: logs and counts every answer (a 413 too) until its last byte is sent.
    observe(app, pipeline.metrics)
    return app
