"""The A2A server (Starlette): agent card, JSON-RPC (A2A 1.0 and 0.3 method names, incl.
streaming), /healthz, /readyz and Prometheus /metrics. The workflow it serves is a plug-in
(aistack_agents.workflow: card, executor, resources, readiness), chosen by name: ``router``
(LangGraph) or ``crew`` (CrewAI); only the chosen one's stack is imported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aistack_agents import __version__
from aistack_agents.settings import Settings
from aistack_agents.telemetry import setup_tracing
from aistack_agents.workflow import load_workflow


def create_app(settings: Settings | None = None, workflow: str | None = None) -> Starlette:
    """The A2A app of one workflow (default: ``settings.agent_workflow``, env AGENT_WORKFLOW).
    Without an LLM it still serves its card, health and metrics, and every message gets a
    failed task that says how to configure one."""
    settings = settings or Settings()
    setup_tracing(settings=settings)
    flow = load_workflow(workflow or settings.agent_workflow, settings)
    handler = DefaultRequestHandler(
        agent_executor=flow.executor, task_store=InMemoryTaskStore(), agent_card=flow.card
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await flow.start(stack)
            yield

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__, "workflow": flow.name})

    async def readyz(request: Request) -> JSONResponse:
        checks = await flow.checks()
        ok = checks.get("llm") == "ok"
        return JSONResponse(
            {"status": "ok" if ok else "not ready", "checks": checks}, 200 if ok else 503
        )

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        *create_agent_card_routes(flow.card),
        *create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(settings: Settings, log_level: str = "info") -> None:
    """Runs the server; WorkflowUnavailableError before listening when the workflow is unknown
    or its stack is not installed."""
    import uvicorn

    app = create_app(settings)
    uvicorn.run(app, host=settings.a2a_host, port=settings.a2a_port, log_level=log_level)
