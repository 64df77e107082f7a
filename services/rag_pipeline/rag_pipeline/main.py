"""FastAPI application factory."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from rag_pipeline import __version__
from rag_pipeline.dependencies import require_api_key
from rag_pipeline.embeddings import Embedder, EmbedderError
from rag_pipeline.logging_setup import configure_logging
from rag_pipeline.pipeline import InvalidInputError, Pipeline
from rag_pipeline.routers import collections, documents, health, ingest, layout, query
from rag_pipeline.settings import Settings
from rag_pipeline.stores import (
    CollectionMismatchError,
    CollectionNotFoundError,
    StoreUnavailableError,
)

log = logging.getLogger("rag_pipeline.http")


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
        if owns_pipeline:
            pipeline.close()

    app = FastAPI(
        title="aistack RAG pipeline",
        version=__version__,
        description="Ingest documents and answer questions with cited sources.",
        lifespan=lifespan,
    )
    app.state.pipeline = pipeline
    auth = [Depends(require_api_key)]
    app.include_router(health.router)
    for module in (ingest, query, documents, collections, layout):
        app.include_router(module.router, dependencies=auth)

    def _error(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

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

    @app.exception_handler(InvalidInputError)
    async def _invalid(_: Request, exc: InvalidInputError) -> JSONResponse:
        return _error(422, str(exc))

    max_bytes = settings.max_request_bytes

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_bytes:
            return _error(
                413,
                f"request body has {length} bytes; the limit is {max_bytes} (MAX_REQUEST_BYTES)",
            )
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["x-request-id"] = request_id
            return response
        finally:
            elapsed = time.perf_counter() - t0
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            pipeline.metrics.requests.labels(request.method, path, str(status)).inc()
            pipeline.metrics.request_latency.labels(path).observe(elapsed)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": request.method,
                    "path": request.url.path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )

    return app
