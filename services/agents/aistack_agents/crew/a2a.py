"""The research crew as an A2A agent: its card, its executor and its workflow plug-in.
CrewAI is imported only when an LLM is configured: a server without one starts fast and
answers every message with a failed task that says how to configure one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from a2a.types import AgentCard, AgentSkill

from aistack_agents.a2a_executor import WorkflowExecutor
from aistack_agents.a2a_executor import agent_card as card_of
from aistack_agents.crew import WORKFLOW
from aistack_agents.rag import RagClient
from aistack_agents.settings import NO_LLM_HELP, Settings

if TYPE_CHECKING:
    from aistack_agents.crew.crew import CrewRun, ResearchCrew


def agent_card(settings: Settings) -> AgentCard:
    return card_of(
        settings,
        "aistack research crew",
        "A CrewAI crew (researcher, writer, reviewer, sequential): researches a topic in "
        "the RAG service's knowledge base, writes a short cited report and reviews it "
        "(verdict: score 0-100, issues, approved).",
        AgentSkill(
            id="research-crew",
            name="Research a topic",
            description="A reviewed, cited report on a topic from the knowledge base",
            tags=["rag", "research", "report", "crewai"],
            examples=["How do GPU time-slicing and replicated volumes fit together?"],
        ),
    )


class CrewExecutor(WorkflowExecutor["ResearchCrew", "CrewRun"]):
    """Runs the crew for the message's text (the topic); each step as a status update, the
    report as an artifact (text + a JSON data part with the verdict) and the completing message."""

    workflow = WORKFLOW
    input_name = "topic"
    cannot_start = "The research crew could not run"
    cannot_finish = "The research crew could not finish"
    artifact = "report"

    @property
    def crew(self) -> ResearchCrew | None:
        return self.runner

    def stream(
        self, runner: ResearchCrew, text: str, task_id: str
    ) -> AsyncIterator[tuple[str, CrewRun]]:
        return runner.stream(text)

    def progress(self, step: str, state: CrewRun) -> str:
        return _progress(step, state)

    def result(self, state: CrewRun) -> tuple[str, dict[str, Any]]:
        summary = state.summary()
        return str(summary["report"]), summary


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

            self.executor.runner = ResearchCrew(self.settings, rag=self.rag)
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
