"""The research crew on CrewAI: Researcher → Writer → Reviewer, ``Process.sequential``.

The topic is first looked up in the RAG service (HTTP API, rag.py): the passages go into the
researcher's task (numbered, for [n] citations), and the researcher keeps a
``search_knowledge_base`` tool for further queries (plus the MCP server's tools when MCP_URL is
set, through the mcp SDK: mcp_tools.py). Each task gets the previous steps' outputs as its
CrewAI task context. The reviewer's verdict is parsed here (not by CrewAI's converter, which
would make unaccounted LLM calls and gives no defined outcome on failure): unparseable → one
stricter ask → the documented default, recorded in ``parse_fallbacks``. Retrieval failure →
``retrieval_error`` and no sources; the researcher is told it has no context. Every step is
timed, traced (one span) and its tokens counted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crewai import LLM, Agent, Crew, Process, Task
from crewai.tasks.task_output import TaskOutput
from crewai.tools import BaseTool
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field

from aistack_agents.crew import WORKFLOW, prompts
from aistack_agents.crew.verdict import DEFAULT_VERDICT, Verdict, parse_verdict
from aistack_agents.llm import LLMError, LLMNotConfiguredError
from aistack_agents.metrics import LLM_TOKENS, NODE_SECONDS, PARSE_FALLBACKS, RUNS, record_quality
from aistack_agents.rag import RagClient, RetrievalError, number_passages
from aistack_agents.settings import Settings
from aistack_agents.telemetry import tracer

T = TypeVar("T")


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine from CrewAI's (synchronous) tool code, with or without a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _retrieve(settings: Settings, query: str) -> list[dict[str, Any]]:
    rag = RagClient(settings)  # one per call: the tool runs in CrewAI's threads
    try:
        return await rag.retrieve(query)
    finally:
        await rag.close()


class _SearchArgs(BaseModel):
    query: str = Field(..., description="What to look up in the knowledge base")


class KnowledgeBaseTool(BaseTool):
    """The RAG service as the researcher's tool. New passages are appended to ``sources`` (the
    run's list), so their [n] numbers continue those of the passages given up front."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    name: str = "search_knowledge_base"
    description: str = (
        "Search the knowledge base (the RAG service) and get numbered passages to cite as [n]."
    )
    args_schema: type[BaseModel] = _SearchArgs
    settings: Settings
    sources: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)

    def _run(self, query: str) -> str:
        try:
            found = _run_sync(_retrieve(self.settings, query))
        except RetrievalError as exc:
            self.errors.append(str(exc))
            return f"Retrieval failed: {exc}. There are no passages: do not invent any."
        lines = number_passages(found, self.sources)
        return "\n".join(lines) or "The knowledge base has no passages for this query."


@dataclass
class CrewRun:
    """What one run produced (``summary()`` is the CLI's JSON; ``trace()`` adds the rest)."""

    topic: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    retrieval_error: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)
    messages: dict[str, list[Any]] = field(default_factory=dict)
    verdict: Verdict = field(default_factory=lambda: DEFAULT_VERDICT.model_copy())
    parse_fallbacks: list[dict[str, Any]] = field(default_factory=list)
    tool_errors: list[str] = field(default_factory=list)
    mcp_url: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "report": self.outputs.get("write", ""),
            "verdict": self.verdict.model_dump(),
            "approved": self.verdict.approved,
            "retrieval_error": self.retrieval_error,
            "sources": [
                {"n": i, "document_id": s["document_id"], "chunk_index": s["chunk_index"]}
                for i, s in enumerate(self.sources, 1)
            ],
            "parse_fallbacks": [
                {"node": f["node"], "outcome": f["outcome"], "used": f["used"]}
                for f in self.parse_fallbacks
            ],
            "steps": [
                {
                    k: s[k]
                    for k in ("step", "agent", "seconds", "prompt_tokens", "completion_tokens")
                }
                for s in self.steps
            ],
        }

    def trace(self) -> dict[str, Any]:
        """The full trace (--verbose): every task text, output and LLM exchange."""
        return {
            **self.summary(),
            "sources": [{"n": i, **s} for i, s in enumerate(self.sources, 1)],
            "research": self.outputs.get("research", ""),
            "review_raw": self.outputs.get("review", ""),
            "parse_fallbacks": self.parse_fallbacks,
            "tool_errors": self.tool_errors,
            "mcp_url": self.mcp_url,
            "trace": [
                {
                    **s,
                    "task": self.tasks.get(s["step"], ""),
                    "output": self.outputs.get(s["step"], ""),
                    "messages": self.messages.get(s["step"], []),
                }
                for s in self.steps
            ],
        }


class ResearchCrew:
    """Builds a fresh crew per run (CrewAI crews and their LLM token counters are per run)."""

    def __init__(self, settings: Settings, *, rag: RagClient | None = None) -> None:
        if not settings.llm_configured:
            raise LLMNotConfiguredError()
        self.settings = settings
        self.rag = rag or RagClient(settings)

    def _llm(self, temperature: float | None = None) -> LLM:
        s = self.settings
        # "openai/<name>" selects CrewAI's native OpenAI provider (chat completions) at any
        # OpenAI-compatible base URL. Retries are ours (stricter prompts), not the client's.
        return LLM(
            model=f"openai/{s.llm_model}",
            base_url=s.llm_url,
            api_key=s.llm_api_key or "not-needed",
            temperature=s.temperature if temperature is None else temperature,
            max_tokens=s.max_tokens,
            timeout=s.llm_timeout_s,
            max_retries=0,
        )

    def _agents(self, tools: list[BaseTool]) -> tuple[Agent, Agent, Agent]:
        common: dict[str, Any] = {"allow_delegation": False, "verbose": False, "max_retry_limit": 0}
        researcher = Agent(**prompts.RESEARCHER, llm=self._llm(), tools=tools, max_iter=5, **common)
        writer = Agent(**prompts.WRITER, llm=self._llm(), max_iter=2, **common)
        # The verdict is a judgement: temperature 0, as the router's quality check.
        reviewer = Agent(**prompts.REVIEWER, llm=self._llm(0.0), max_iter=2, **common)
        return researcher, writer, reviewer

    async def stream(self, topic: str) -> AsyncIterator[tuple[str, CrewRun]]:
        """(step, run so far) after retrieve, research, write and review; the last is final.
        LLMError when the LLM failed (the caller says what could not be done)."""
        try:
            async for item in self._stream(topic):
                yield item
        except LLMError:
            RUNS.labels(WORKFLOW, "unknown", "llm_error").inc()
            raise

    async def _stream(self, topic: str) -> AsyncIterator[tuple[str, CrewRun]]:
        run = CrewRun(topic=topic, mcp_url=self.settings.mcp_url)
        with tracer().start_as_current_span("crew.run") as root:
            root.set_attribute("agents.workflow", WORKFLOW)
            root.set_attribute("crew.topic", topic)
            with tracer().start_as_current_span("crew.retrieve") as span:
                start = time.perf_counter()
                try:
                    run.sources = await self.rag.retrieve(topic)
                except RetrievalError as exc:
                    run.retrieval_error = str(exc)
                    span.set_attribute("crew.retrieval_error", run.retrieval_error)
                span.set_attribute("crew.passages", len(run.sources))
                seconds = time.perf_counter() - start
                NODE_SECONDS.labels(WORKFLOW, "retrieve").observe(seconds)
            run.steps.append(_step_record("retrieve", "rag", seconds, 0, 0))
            yield "retrieve", run

            crew_agents: dict[str, Agent] = {}
            async for step in self._kickoff(run, root, crew_agents):
                yield step, run

            review_seconds = await self._verdict(run, crew_agents["review"])
            run.steps[-1]["seconds"] = round(run.steps[-1]["seconds"] + review_seconds, 4)
            root.set_attribute("crew.approved", run.verdict.approved)
            if run.verdict.score is not None:
                root.set_attribute("crew.score", run.verdict.score)
        record_quality(WORKFLOW, run.verdict.approved)
        RUNS.labels(WORKFLOW, "no_context" if run.retrieval_error else "rag", "ok").inc()
        yield "verdict", run

    async def _kickoff(
        self, run: CrewRun, root: trace.Span, agents: dict[str, Agent]
    ) -> AsyncIterator[str]:
        """Runs the CrewAI crew in a thread; yields each step as its task completes. Fills
        ``agents`` (step -> agent): per run, as runs may overlap in the A2A server."""
        tool = KnowledgeBaseTool(settings=self.settings, sources=run.sources)
        tools: list[BaseTool] = [tool]
        if self.settings.mcp_url:
            from aistack_agents.crew.mcp_tools import discover
            from aistack_agents.mcp_client import MCPError

            try:
                tools += await discover(self.settings.mcp_url, self.settings.mcp_api_key)
            except Exception as exc:  # the crew runs on with the RAG tool, and says why
                # MCPError reads "MCP server at <url>: <cause>" already.
                run.tool_errors.append(
                    str(exc)
                    if isinstance(exc, MCPError)
                    else f"MCP server at {self.settings.mcp_url}: {exc!r}"
                )
        researcher, writer, reviewer = self._agents(tools)
        agents |= {"research": researcher, "write": writer, "review": reviewer}
        texts = {
            "research": prompts.research_task(run.topic, run.sources, run.retrieval_error),
            "write": prompts.write_task(run.topic),
            "review": prompts.review_task(run.topic),
        }
        run.tasks = texts
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, int, float, TaskOutput] | None] = asyncio.Queue()

        def done(step: str) -> Any:
            def callback(output: TaskOutput) -> None:  # in CrewAI's thread
                item = (step, time.time_ns(), time.perf_counter(), output)
                loop.call_soon_threadsafe(queue.put_nowait, item)

            return callback

        research = Task(
            description=texts["research"],
            expected_output=prompts.RESEARCH_OUTPUT,
            agent=researcher,
            callback=done("research"),
        )
        write = Task(
            description=texts["write"],
            expected_output=prompts.WRITE_OUTPUT,
            agent=writer,
            context=[research],
            callback=done("write"),
        )
        review = Task(
            description=texts["review"],
            expected_output=prompts.REVIEW_OUTPUT,
            agent=reviewer,
            context=[research, write],  # the reviewer checks the report against the notes
            callback=done("review"),
        )
        crew = Crew(
            agents=[researcher, writer, reviewer],
            tasks=[research, write, review],
            process=Process.sequential,
            verbose=False,
        )
        prev_ns, prev = time.time_ns(), time.perf_counter()
        job = asyncio.ensure_future(asyncio.to_thread(crew.kickoff))
        job.add_done_callback(lambda _: queue.put_nowait(None))
        parent = trace.set_span_in_context(root)
        while (item := await queue.get()) is not None:
            step, end_ns, end, output = item
            agent = agents[step]
            usage = agent.llm.get_token_usage_summary()  # type: ignore[union-attr]
            seconds = end - prev
            NODE_SECONDS.labels(WORKFLOW, step).observe(seconds)
            LLM_TOKENS.labels(WORKFLOW, step, "prompt").inc(usage.prompt_tokens)
            LLM_TOKENS.labels(WORKFLOW, step, "completion").inc(usage.completion_tokens)
            # The step ran in CrewAI's thread: its span is recorded with the measured times.
            span = tracer().start_span(f"crew.{step}", context=parent, start_time=prev_ns)
            span.set_attribute("agents.workflow", WORKFLOW)
            span.set_attribute("crew.agent", agent.role)
            span.set_attribute("crew.prompt_tokens", usage.prompt_tokens)
            span.set_attribute("crew.completion_tokens", usage.completion_tokens)
            span.end(end_time=end_ns)
            run.outputs[step] = output.raw
            run.messages[step] = [dict(m) for m in (output.messages or [])]
            run.steps.append(
                _step_record(
                    step, agent.role, seconds, usage.prompt_tokens, usage.completion_tokens
                )
            )
            prev_ns, prev = end_ns, end
            yield step
        try:
            job.result()
        except Exception as exc:  # CrewAI wraps the provider's errors in its own types
            raise LLMError(f"the crew failed (LLM at {self.settings.llm_url}): {exc}") from exc
        finally:
            # pydantic copied the list into the tool: take back what its searches added.
            run.sources = tool.sources
            run.tool_errors += tool.errors

    async def _verdict(self, run: CrewRun, reviewer: Agent) -> float:
        """Parses the reviewer's reply; one stricter ask if it does not parse, then the
        default. Returns the seconds spent on the retry (part of the review step)."""
        raw = run.outputs.get("review", "")
        verdict = parse_verdict(raw)
        if verdict is not None:
            run.verdict = verdict
            return 0.0
        PARSE_FALLBACKS.labels(WORKFLOW, "review", "retried").inc()
        llm = reviewer.llm
        before = llm.get_token_usage_summary()  # type: ignore[union-attr]
        messages = prompts.strict_review(
            _system_prompt(reviewer),
            run.topic,
            run.outputs.get("research", ""),
            run.outputs.get("write", ""),
        )
        start = time.perf_counter()
        with tracer().start_as_current_span("crew.review_retry"):
            try:
                retry = str(await asyncio.to_thread(llm.call, messages))  # type: ignore[union-attr]
            except Exception as exc:
                raise LLMError(f"LLM at {self.settings.llm_url} failed: {exc}") from exc
        seconds = time.perf_counter() - start
        after = llm.get_token_usage_summary()  # type: ignore[union-attr]
        LLM_TOKENS.labels(WORKFLOW, "review", "prompt").inc(
            after.prompt_tokens - before.prompt_tokens
        )
        LLM_TOKENS.labels(WORKFLOW, "review", "completion").inc(
            after.completion_tokens - before.completion_tokens
        )
        run.steps[-1]["prompt_tokens"] = after.prompt_tokens
        run.steps[-1]["completion_tokens"] = after.completion_tokens
        run.messages.setdefault("review", []).extend(
            [*messages, {"role": "assistant", "content": retry}]
        )
        verdict = parse_verdict(retry)
        if verdict is not None:
            run.verdict = verdict
            run.parse_fallbacks.append(
                {
                    "node": "review",
                    "outcome": "retried",
                    "raw": [raw, retry],
                    "used": verdict.model_dump(),
                }
            )
        else:
            PARSE_FALLBACKS.labels(WORKFLOW, "review", "default").inc()
            run.verdict = DEFAULT_VERDICT
            run.parse_fallbacks.append(
                {
                    "node": "review",
                    "outcome": "default",
                    "raw": [raw, retry],
                    "used": DEFAULT_VERDICT.model_dump(),
                }
            )
        return seconds

    async def run(self, topic: str) -> CrewRun:
        """One run to the end (LLMError propagates)."""
        last: CrewRun | None = None
        async for _, run in self.stream(topic):
            last = run
        assert last is not None
        return last

    async def ready(self) -> str:
        """'ok' when the LLM lists its models (same check as the router's)."""
        from aistack_agents.llm import LLMClient

        client = LLMClient(self.settings, WORKFLOW)
        try:
            return await client.ready()
        finally:
            await client.close()

    async def close(self) -> None:
        await self.rag.close()


def _system_prompt(agent: Agent) -> str:
    # The first words of CrewAI's own system prompt for this agent, so that the retry reads
    # as the same role (and a scripted test server can tell it apart).
    return f"You are {agent.role}. {agent.backstory}\nYour personal goal is: {agent.goal}"


def _step_record(
    step: str, agent: str, seconds: float, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    return {
        "step": step,
        "agent": agent,
        "seconds": round(seconds, 4),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
    }
