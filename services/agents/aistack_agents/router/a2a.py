"""The router as an A2A agent: its card and its executor."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import AsyncExitStack
from typing import Any

from a2a.helpers import new_data_part, new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, TaskState
from a2a.utils.constants import (
    PROTOCOL_VERSION_0_3,
    PROTOCOL_VERSION_CURRENT,
    TransportProtocol,
)

from aistack_agents import __version__, mcp_client
from aistack_agents.llm import LLMError
from aistack_agents.metrics import RUNS
from aistack_agents.rag import make_retriever
from aistack_agents.router.graph import WORKFLOW, QueryRouter, open_checkpointer, result_summary
from aistack_agents.settings import NO_LLM_HELP, Settings

log = logging.getLogger(__name__)


def agent_card(settings: Settings) -> AgentCard:
    return AgentCard(
        name="aistack query router",
        description=(
            "Classifies a question (factual, analytical, creative), answers it from the RAG "
            "service's knowledge base with numbered citations or directly, and self-checks the "
            "answer's quality (one regeneration when it fails)."
        ),
        version=__version__,
        # The same JSON-RPC endpoint speaks A2A 1.0 and, for older clients, 0.3 (whose card
        # fields, url and protocolVersion, are served from the 0.3 interface).
        supported_interfaces=[
            AgentInterface(
                url=settings.public_url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=version,
            )
            for version in (PROTOCOL_VERSION_CURRENT, PROTOCOL_VERSION_0_3)
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain", "application/json"],
        skills=[
            AgentSkill(
                id="query-router",
                name="Answer a question",
                description="Routed, retrieval-augmented answer with citations and a quality score",
                tags=["rag", "question-answering", "langgraph"],
                examples=["Which component replicates block volumes?"],
            )
        ],
    )


class RouterExecutor(AgentExecutor):
    """Runs the graph for the message's text; node progress as status updates, the answer as
    an artifact (text + a JSON data part) and as the completing message."""

    def __init__(self, router: QueryRouter | None) -> None:
        self.router = router  # None: no LLM configured

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is None:
            assert context.message is not None
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        query = context.get_user_input().strip()
        if not query:
            await updater.reject(updater.new_agent_message([new_text_part("empty question")]))
            return
        if self.router is None:
            RUNS.labels(WORKFLOW, "none", "no_llm").inc()
            text = f"The query router could not answer: {NO_LLM_HELP}."
            await updater.failed(updater.new_agent_message([new_text_part(text)]))
            return
        await updater.start_work()
        state = None
        try:
            async for node, state in self.router.stream(query, thread_id=task.id):
                await updater.update_status(
                    TaskState.TASK_STATE_WORKING,
                    message=updater.new_agent_message([new_text_part(_progress(node, state))]),
                )
        except LLMError as exc:
            log.warning("router run failed: %s", exc)
            text = f"The query router could not answer: {exc}"
            await updater.failed(updater.new_agent_message([new_text_part(text)]))
            return
        assert state is not None
        summary = result_summary(state)
        await updater.add_artifact(
            [new_text_part(state["response"]), new_data_part(json.loads(json.dumps(summary)))],
            name="answer",
        )
        await updater.complete(updater.new_agent_message([new_text_part(state["response"])]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def _progress(node: str, state: dict) -> str:
    if node == "classify_query":
        return f"classified as {state['classification']}, route {state['route']}"
    if node == "retrieve_context":
        if state["retrieval_error"]:
            return f"retrieval failed: {state['retrieval_error']}"
        return f"retrieved {len(state['context'])} passages"
    if node == "generate_response":
        return f"answer drafted (attempt {state['attempts']})"
    return f"quality {state['quality_score']} (passed: {state['quality_passed']})"


class RouterWorkflow:
    """The router as the A2A server's workflow plug-in (aistack_agents.workflow.Workflow)."""

    name = WORKFLOW

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.card = agent_card(settings)
        self.executor = RouterExecutor(None)
        self.rag = make_retriever(settings)  # RETRIEVAL_BACKEND

    async def start(self, stack: AsyncExitStack) -> None:
        if self.settings.llm_configured:
            saver = await stack.enter_async_context(open_checkpointer(self.settings.checkpoint_dsn))
            self.executor.router = QueryRouter(self.settings, rag=self.rag, checkpointer=saver)
            stack.push_async_callback(self.executor.router.close)
        else:
            stack.push_async_callback(self.rag.close)

    async def checks(self) -> dict[str, Any]:
        router = self.executor.router
        checks: dict[str, Any] = {}
        checks["llm"] = await router.llm.ready() if router else f"not configured: {NO_LLM_HELP}"
        # Retrieval and the MCP tools are optional: the router still answers without them
        # (and says it had no context / records tool_errors), so they are reported, never gating.
        checks[self.settings.retrieval_backend] = await self.rag.ready()
        if self.settings.mcp_url:
            checks["mcp"] = await mcp_status(self.settings)
        return checks


MCP_READY_TIMEOUT_S = 3.0  # well inside a readiness probe's timeout


async def mcp_status(settings: Settings) -> str:
    """'ok (N tools)' when the MCP server lists its tools, else why not (reported by /readyz)."""
    url = settings.mcp_url or ""
    try:
        tools = await asyncio.wait_for(
            mcp_client.list_tools(url, settings.mcp_api_key), MCP_READY_TIMEOUT_S
        )
    except mcp_client.MCPError as exc:
        return f"unreachable: {exc}"
    except TimeoutError:
        return f"unreachable: MCP server at {url} did not list its tools in {MCP_READY_TIMEOUT_S} s"
    return f"ok ({len(tools)} tools)"


def workflow(settings: Settings) -> RouterWorkflow:
    return RouterWorkflow(settings)
