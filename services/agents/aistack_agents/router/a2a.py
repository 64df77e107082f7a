"""The router as an A2A agent: its card and its executor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from a2a.types import AgentCard, AgentSkill

from aistack_agents import mcp_client
from aistack_agents.a2a_executor import WorkflowExecutor
from aistack_agents.a2a_executor import agent_card as card_of
from aistack_agents.rag import make_retriever
from aistack_agents.router.graph import WORKFLOW, QueryRouter, open_checkpointer, result_summary
from aistack_agents.router.state import RouterState
from aistack_agents.settings import NO_LLM_HELP, Settings


def agent_card(settings: Settings) -> AgentCard:
    return card_of(
        settings,
        "aistack query router",
        "Classifies a question (factual, analytical, creative), answers it from the RAG "
        "service's knowledge base with numbered citations or directly, and self-checks the "
        "answer's quality (one regeneration when it fails).",
        AgentSkill(
            id="query-router",
            name="Answer a question",
            description="Routed, retrieval-augmented answer with citations and a quality score",
            tags=["rag", "question-answering", "langgraph"],
            examples=["Which component replicates block volumes?"],
        ),
    )


class RouterExecutor(WorkflowExecutor[QueryRouter, RouterState]):
    """Runs the graph for the message's text; node progress as status updates, the answer as
    an artifact (text + a JSON data part) and as the completing message."""

    workflow = WORKFLOW
    input_name = "question"
    cannot_start = cannot_finish = "The query router could not answer"
    artifact = "answer"

    @property
    def router(self) -> QueryRouter | None:
        return self.runner

    def stream(
        self, runner: QueryRouter, text: str, task_id: str
    ) -> AsyncIterator[tuple[str, RouterState]]:
        return runner.stream(text, thread_id=task_id)

    def progress(self, step: str, state: RouterState) -> str:
        return _progress(step, state)

    def result(self, state: RouterState) -> tuple[str, dict[str, Any]]:
        return state["response"], result_summary(state)


def _progress(node: str, state: RouterState) -> str:
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
            router = QueryRouter(self.settings, rag=self.rag, checkpointer=saver)
            self.executor.runner = router
            stack.push_async_callback(router.close)
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
