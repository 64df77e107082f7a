"""The BeeAI agent's A2A server: beeai-framework's A2A executor (a2a-sdk 0.3, JSON-RPC
``message/send`` and ``message/stream``, the agent's steps streamed as ``working`` updates)
behind a2a-sdk's Starlette routes, next to /healthz, /readyz and Prometheus /metrics.

beeai-framework's ``A2AServer.serve()`` runs uvicorn on an app it builds itself; the same
executor and routes are assembled here so that readiness (the LLM answers), metrics and the
no-LLM failure sit in one app. The answer is the completing message and an artifact (text +
a data part with the sources), which ``aistack-agents ask`` reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from a2a.server.agent_execution import RequestContext
from a2a.server.apps import A2AStarletteApplication
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentSkill, DataPart, Part, TextPart
from a2a.utils import new_agent_text_message, new_task
from beeai_framework.adapters.a2a.serve.executors.base_a2a_agent_executor import (
    _extract_request_messages,
)
from beeai_framework.adapters.a2a.serve.executors.tool_calling_agent_executor import (
    ToolCallingAgentExecutor,
)
from beeai_framework.serve.utils import UnlimitedMemoryManager
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aistack_agents import __version__
from aistack_agents.beeai.agent import (
    DESCRIPTION,
    NAME,
    WORKFLOW,
    AgentFailedError,
    BeeAIRuntime,
    summary,
)
from aistack_agents.beeai.settings import BeeAISettings
from aistack_agents.llm import LLMClient
from aistack_agents.metrics import RUNS
from aistack_agents.settings import NO_LLM_HELP
from aistack_agents.telemetry import setup_tracing


def agent_card(settings: BeeAISettings) -> AgentCard:
    return AgentCard(
        name=NAME,
        description=DESCRIPTION,
        url=settings.public_url,
        version=__version__,
        default_input_modes=["text"],
        default_output_modes=["text", "application/json"],
        capabilities=AgentCapabilities(streaming=True),
        skills=[
            AgentSkill(
                id="lab-knowledge-qa",
                name="Lab knowledge Q&A",
                description=(
                    "Answers from the RAG service's documents with numbered sources; uses the "
                    "MCP gateway's tools when configured. Says so when retrieval failed."
                ),
                tags=["rag", "beeai", "mcp", "lab"],
                examples=["Which component replicates volumes?"],
            )
        ],
    )


class BeeAIExecutor(ToolCallingAgentExecutor):
    """beeai-framework's executor for tool-calling agents (its trajectory events become
    ``working`` status updates), with a fresh agent per task, the no-LLM failure, and the
    answer as an artifact."""

    def __init__(self, runtime: BeeAIRuntime, card: AgentCard) -> None:
        # The agent is built per task (its RAG tool records that task's sources), hence no
        # agent instance here; execute() below is the only user of it.
        super().__init__(
            agent=None,  # type: ignore[arg-type]
            agent_card=card,
            memory_manager=UnlimitedMemoryManager(),
            send_trajectory=True,
        )
        self.runtime = runtime

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        if not context.current_task:
            if not context.message:
                raise ValueError("no message in the request")
            context.current_task = new_task(context.message)
            await updater.submit()
        ids = {"context_id": context.context_id, "task_id": context.task_id}
        if not self.runtime.settings.llm_configured:
            RUNS.labels(WORKFLOW, "none", "no_llm").inc()
            await updater.failed(
                new_agent_text_message(f"could not answer the query: {NO_LLM_HELP}", **ids)
            )
            return
        await updater.start_work()
        try:
            result = await self.runtime.run(
                _extract_request_messages(context),
                observe=lambda emitter: self._process_events(emitter, context, updater),
            )
        except AgentFailedError as exc:
            await updater.failed(new_agent_text_message(str(exc), **ids))
            return
        await updater.add_artifact(
            [
                Part(root=TextPart(text=result["answer"])),
                Part(root=DataPart(data=summary(result))),
            ],
            name="answer",
        )
        await updater.complete(new_agent_text_message(result["answer"], **ids))


def create_app(settings: BeeAISettings | None = None) -> Starlette:
    """The BeeAI agent's A2A app. Without an LLM it still serves its card, health and metrics,
    and every message gets a failed task that says which variables to set."""
    settings = settings or BeeAISettings()
    setup_tracing("aistack-agents-beeai")
    runtime = BeeAIRuntime(settings)
    card = agent_card(settings)
    handler = DefaultRequestHandler(
        agent_executor=BeeAIExecutor(runtime, card), task_store=InMemoryTaskStore()
    )
    llm = LLMClient(settings, workflow=WORKFLOW) if settings.llm_configured else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.close()
            if llm:
                await llm.close()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__, "workflow": "beeai"})

    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, Any] = {
            "llm": await llm.ready() if llm else f"not configured: {NO_LLM_HELP}",
            # RAG and MCP do not gate readiness: the agent answers without them and says so.
            "rag": await runtime.rag.ready(),
            "mcp": runtime.mcp_status(),
        }
        ok = checks["llm"] == "ok"
        return JSONResponse(
            {"status": "ok" if ok else "not ready", "checks": checks}, 200 if ok else 503
        )

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    a2a_routes = A2AStarletteApplication(agent_card=card, http_handler=handler).routes()
    routes = [
        *a2a_routes,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(settings: BeeAISettings, log_level: str = "info") -> None:
    import uvicorn

    uvicorn.run(
        create_app(settings), host=settings.a2a_host, port=settings.a2a_port, log_level=log_level
    )
