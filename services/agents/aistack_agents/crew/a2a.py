"""The research crew as an A2A agent: its card, its executor and its workflow plug-in.
CrewAI is imported only when an LLM is configured: a server without one starts fast and
answers every message with a failed task that says how to configure one."""

from __future__ import annotations

import json
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

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
from aistack_agents.crew import WORKFLOW
from aistack_agents.llm import LLMError
from aistack_agents.metrics import RUNS
from aistack_agents.rag import RagClient
from aistack_agents.settings import NO_LLM_HELP, Settings

if TYPE_CHECKING:
    from aistack_agents.crew.crew import CrewRun, ResearchCrew

log = logging.getLogger(__name__)


def agent_card(settings: Settings) -> AgentCard:
    return AgentCard(
        name="aistack research crew",
        description=(
            "A CrewAI crew (researcher, writer, reviewer, sequential): researches a topic in "
            "the RAG service's knowledge base, writes a short cited report and reviews it "
            "(verdict: score 0-100, issues, approved)."
        ),
        version=__version__,
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
                id="research-crew",
                name="Research a topic",
                description="A reviewed, cited report on a topic from the knowledge base",
                tags=["rag", "research", "report", "crewai"],
                examples=["How do GPU time-slicing and replicated volumes fit together?"],
            )
        ],
    )


class CrewExecutor(AgentExecutor):
    """Runs the crew for the message's text (the topic); each step as a status update, the
    report as an artifact (text + a JSON data part with the verdict) and the completing message."""

    def __init__(self, crew: ResearchCrew | None) -> None:
        self.crew = crew  # None: no LLM configured

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is None:
            assert context.message is not None
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        topic = context.get_user_input().strip()
        if not topic:
            await updater.reject(updater.new_agent_message([new_text_part("empty topic")]))
            return
        if self.crew is None:
            RUNS.labels(WORKFLOW, "none", "no_llm").inc()
            text = f"The research crew could not run: {NO_LLM_HELP}."
            await updater.failed(updater.new_agent_message([new_text_part(text)]))
            return
        await updater.start_work()
        run: CrewRun | None = None
        try:
            async for step, run in self.crew.stream(topic):
                await updater.update_status(
                    TaskState.TASK_STATE_WORKING,
                    message=updater.new_agent_message([new_text_part(_progress(step, run))]),
                )
        except LLMError as exc:
            log.warning("crew run failed: %s", exc)
            text = f"The research crew could not finish: {exc}"
            await updater.failed(updater.new_agent_message([new_text_part(text)]))
            return
        assert run is not None
        summary = run.summary()
        report = summary["report"]
        await updater.add_artifact(
            [new_text_part(report), new_data_part(json.loads(json.dumps(summary, default=str)))],
            name="report",
        )
        await updater.complete(updater.new_agent_message([new_text_part(report)]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def _progress(step: str, run: CrewRun) -> str:
    if step == "retrieve":
        if run.retrieval_error:
            return f"retrieval failed: {run.retrieval_error}"
        return f"retrieved {len(run.sources)} passages"
    if step == "verdict":
        v = run.verdict
        return f"verdict: score {v.score}, approved {v.approved}, {len(v.issues)} issue(s)"
    return f"{step} done"


class CrewWorkflow:
    """The crew as the A2A server's workflow plug-in (aistack_agents.workflow.Workflow)."""

    name = WORKFLOW

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.card = agent_card(settings)
        self.executor = CrewExecutor(None)
        self.rag = RagClient(settings)

    async def start(self, stack: AsyncExitStack) -> None:
        if self.settings.llm_configured:
            from aistack_agents.crew.crew import ResearchCrew

            self.executor.crew = ResearchCrew(self.settings, rag=self.rag)
        stack.push_async_callback(self.rag.close)

    async def checks(self) -> dict[str, Any]:
        crew = self.executor.crew
        checks: dict[str, Any] = {}
        checks["llm"] = await crew.ready() if crew else f"not configured: {NO_LLM_HELP}"
        # Without the RAG service the crew still runs, and its result says retrieval_error.
        checks["rag"] = await self.rag.ready()
        return checks


def workflow(settings: Settings) -> CrewWorkflow:
    return CrewWorkflow(settings)
