"""The A2A server (Starlette): agent card, JSON-RPC (A2A 1.0 and 0.3 method names, incl.
streaming), /healthz, /readyz and Prometheus /metrics. Workflows plug in an executor + card."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aistack_agents import __version__
from aistack_agents.rag import RagClient
from aistack_agents.router.a2a import RouterExecutor, agent_card
from aistack_agents.router.graph import QueryRouter, open_checkpointer
from aistack_agents.settings import NO_LLM_HELP, Settings
from aistack_agents.telemetry import setup_tracing


def create_app(settings: Settings | None = None) -> Starlette:
    """The router's A2A app. Without an LLM it still serves its card, health and metrics, and
    every message gets a failed task that says how to configure one."""
    settings = settings or Settings()
    setup_tracing(settings=settings)
    card = agent_card(settings)
    executor = RouterExecutor(None)
    handler = DefaultRequestHandler(
        agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card
    )
    rag = RagClient(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if settings.llm_configured:
                saver = await stack.enter_async_context(open_checkpointer(settings.checkpoint_dsn))
                executor.router = QueryRouter(settings, rag=rag, checkpointer=saver)
                stack.push_async_callback(executor.router.close)
            else:
                stack.push_async_callback(rag.close)
            yield

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, Any] = {}
        router = executor.router
        checks["llm"] = await router.llm.ready() if router else f"not configured: {NO_LLM_HELP}"
        # The RAG service is optional: the router still answers (and says it had no context).
        checks["rag"] = await rag.ready()
        ok = checks["llm"] == "ok"
        return JSONResponse(
            {"status": "ok" if ok else "not ready", "checks": checks}, 200 if ok else 503
        )

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(settings: Settings, log_level: str = "info") -> None:
    import uvicorn

    uvicorn.run(
        create_app(settings), host=settings.a2a_host, port=settings.a2a_port, log_level=log_level
    )
