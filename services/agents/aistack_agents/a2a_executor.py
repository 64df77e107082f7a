"""What the router's and the crew's A2A agents share (a2a-sdk 1.x): the agent card's frame and
the executor's skeleton. The BeeAI agent speaks A2A 0.3 through beeai-framework's own executor
(another a2a-sdk, another venv), so it keeps its own."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

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

from aistack_agents import __version__
from aistack_agents.llm import LLMError
from aistack_agents.metrics import RUNS
from aistack_agents.settings import NO_LLM_HELP, Settings

log = logging.getLogger(__name__)

R = TypeVar("R")  # what runs the workflow (None: no LLM configured)
S = TypeVar("S")  # its state after each step


def agent_card(settings: Settings, name: str, description: str, skill: AgentSkill) -> AgentCard:
    """A card for one skill, streaming, text in, text and JSON out."""
    return AgentCard(
        name=name,
        description=description,
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
        skills=[skill],
    )


class WorkflowExecutor(AgentExecutor, ABC, Generic[R, S]):
    """Runs the workflow on the message's text: each step as a ``working`` status update, the
    result as an artifact (text + a JSON data part) and as the completing message. An empty
    text is rejected; without an LLM (``runner`` None), and when the LLM fails, the task fails
    with a message that says why."""

    workflow: str
    input_name: str  # what the text is ("question", "topic"): "empty <input_name>"
    cannot_start: str  # "The query router could not answer" (no LLM)
    cannot_finish: str  # ... (the LLM failed)
    artifact: str  # the artifact's name

    def __init__(self, runner: R | None) -> None:
        self.runner = runner

    @abstractmethod
    def stream(self, runner: R, text: str, task_id: str) -> AsyncIterator[tuple[str, S]]:
        """(step, state after it); the last state is the result."""

    @abstractmethod
    def progress(self, step: str, state: S) -> str: ...

    @abstractmethod
    def result(self, state: S) -> tuple[str, dict[str, Any]]:
        """The answer's text and the JSON summary of the data part."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is None:
            assert context.message is not None
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        text = context.get_user_input().strip()
        if not text:
            message = f"empty {self.input_name}"
            await updater.reject(updater.new_agent_message([new_text_part(message)]))
            return
        if self.runner is None:
            RUNS.labels(self.workflow, "none", "no_llm").inc()
            message = f"{self.cannot_start}: {NO_LLM_HELP}."
            await updater.failed(updater.new_agent_message([new_text_part(message)]))
            return
        await updater.start_work()
        state: S | None = None
        try:
            async for step, state in self.stream(self.runner, text, task.id):
                await updater.update_status(
                    TaskState.TASK_STATE_WORKING,
                    message=updater.new_agent_message([new_text_part(self.progress(step, state))]),
                )
        except LLMError as exc:
            log.warning("%s run failed: %s", self.workflow, exc)
            message = f"{self.cannot_finish}: {exc}"
            await updater.failed(updater.new_agent_message([new_text_part(message)]))
            return
        assert state is not None
        answer, summary = self.result(state)
        data = json.loads(json.dumps(summary, default=str))  # JSON values only
        await updater.add_artifact([new_text_part(answer), new_data_part(data)], name=self.artifact)
        await updater.complete(updater.new_agent_message([new_text_part(answer)]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()
