"""What the A2A server needs from a workflow (a plug-in): its agent card, its executor, the
resources it opens for the server's lifetime and its readiness checks.

Each workflow's module is imported only when selected (``aistack-agents serve --workflow``,
env ``AGENT_WORKFLOW``): the router's pulls in LangGraph, the crew's CrewAI, and their images
ship only one of them.
"""

from __future__ import annotations

import importlib
import importlib.util
from contextlib import AsyncExitStack
from typing import Any, Protocol

from a2a.server.agent_execution import AgentExecutor
from a2a.types import AgentCard

from aistack_agents.settings import Settings

# name -> module with ``workflow(settings) -> Workflow``.
WORKFLOWS = {
    "router": "aistack_agents.router.a2a",
    "crew": "aistack_agents.crew.a2a",
}


class Workflow(Protocol):
    name: str
    card: AgentCard
    executor: AgentExecutor

    async def start(self, stack: AsyncExitStack) -> None:
        """Opens what the workflow needs while the server runs (closed through the stack).
        Must not fail when no LLM is configured: the server then answers every message with
        a failed task that says how to configure one."""

    async def checks(self) -> dict[str, Any]:
        """Readiness checks; the server is ready when ``checks["llm"] == "ok"``."""


# What each workflow needs installed, and where it is: its virtualenv and image.
STACKS = {
    "router": ("langgraph", "make agents, image ghcr.io/aistack/agents"),
    "crew": ("crewai", "make crew, image ghcr.io/aistack/agents-crew"),
}


class WorkflowUnavailableError(RuntimeError):
    """Unknown workflow, or its stack is not installed in this environment."""


def load_workflow(name: str, settings: Settings) -> Workflow:
    if name not in WORKFLOWS:
        raise WorkflowUnavailableError(
            f"unknown workflow {name!r}: choose one of {', '.join(WORKFLOWS)}"
        )
    package, where = STACKS[name]
    # Checked up front: the crew imports CrewAI only once an LLM is configured.
    if importlib.util.find_spec(package) is None:
        raise WorkflowUnavailableError(
            f"the {name} workflow needs {package}, which is not installed here ({where})"
        )
    module = importlib.import_module(WORKFLOWS[name])
    return module.workflow(settings)  # type: ignore[no-any-return]
