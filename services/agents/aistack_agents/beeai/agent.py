"""The BeeAI agent: a beeai-framework RequirementAgent whose LLM is any OpenAI-compatible server
(Llama Stack's OpenAI API in the lab), with the RAG service as its first tool and the MCP
server's tools when MCP_URL is set. The answer's sources and retrieval failures come from the
RAG tool's own record of the run, never from the model's text."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from beeai_framework.adapters.openai import OpenAIChatModel
from beeai_framework.agents.requirement import RequirementAgent
from beeai_framework.agents.requirement.requirements.conditional import ConditionalRequirement
from beeai_framework.backend import AnyMessage, UserMessage
from beeai_framework.backend.types import ChatModelParameters
from beeai_framework.emitter import Emitter
from beeai_framework.tools import AnyTool

from aistack_agents.beeai.settings import BeeAISettings
from aistack_agents.beeai.tools import RAG_TOOL, MCPConnection, RagSearchTool
from aistack_agents.llm import LLMNotConfiguredError
from aistack_agents.metrics import LLM_TOKENS, NODE_SECONDS, RUNS
from aistack_agents.rag import RagClient

WORKFLOW = "beeai"
NAME = "aistack-beeai-agent"
DESCRIPTION = (
    "The aistack lab's BeeAI agent: answers questions from the lab's knowledge base (the RAG "
    "service, with numbered sources) and the MCP gateway's tools."
)
# The system prompt opens with "# Role\nAssume the role of <ROLE>." (beeai-framework's template).
ROLE = "the aistack lab assistant"
INSTRUCTIONS = (
    f"Search the knowledge base with the {RAG_TOOL} tool before answering and cite the "
    "passages you use as [n]. If the search fails or finds nothing, say so plainly; never "
    "invent passages or sources."
)


class AgentFailedError(RuntimeError):
    """The agent run failed (LLM unreachable or erroring, iteration limit, tool loop)."""


class BeeAIRuntime:
    """What lives as long as the process: settings, the RAG client, the MCP session and tools.
    Each message gets a fresh agent (and RAG tool, which records that run's sources)."""

    def __init__(self, settings: BeeAISettings) -> None:
        self.settings = settings
        self.rag = RagClient(settings)
        self.mcp_tools: list[AnyTool] = []
        self.mcp_error: str | None = None
        self._mcp: MCPConnection | None = None

    async def start(self) -> None:
        """Connects to the MCP server when one is configured. An unreachable MCP server does not
        stop the agent: it answers with the RAG tool and /readyz reports the MCP error."""
        if not self.settings.mcp_url:
            return
        self._mcp = MCPConnection(self.settings.mcp_url, self.settings.mcp_api_key)
        try:
            self.mcp_tools = await self._mcp.open()
        except (RuntimeError, TimeoutError) as exc:
            self.mcp_error = f"MCP server at {self.settings.mcp_url}: {str(exc) or 'timed out'}"

    async def close(self) -> None:
        if self._mcp is not None:
            await self._mcp.close()
        await self.rag.close()

    def mcp_status(self) -> str:
        if not self.settings.mcp_url:
            return "not configured (MCP_URL)"
        if self.mcp_error:
            return f"unavailable: {self.mcp_error}"
        return f"ok ({len(self.mcp_tools)} tools)"

    def build(self, rag_tool: RagSearchTool) -> RequirementAgent:
        if not self.settings.llm_url:
            raise LLMNotConfiguredError()
        s = self.settings
        llm = OpenAIChatModel(
            s.llm_model,
            api_key=s.llm_api_key or "not-needed",
            base_url=s.llm_url,
            parameters=ChatModelParameters(
                temperature=s.temperature, max_tokens=s.max_tokens, stream=False
            ),
            settings={"timeout": s.llm_timeout_s},
        )
        return RequirementAgent(
            llm=llm,
            tools=[rag_tool, *self.mcp_tools],
            # Grounded by construction: the first step is always a knowledge-base search.
            requirements=[ConditionalRequirement(rag_tool, force_at_step=1)],
            name=NAME,
            description=DESCRIPTION,
            role=ROLE,
            instructions=INSTRUCTIONS,
            # A plain-text reply is the answer: OpenAI-compatible servers need not support
            # tool_choice "required" (beeai-framework then falls back to JSON-schema replies,
            # which small models often get wrong).
            final_answer_as_tool=False,
        )

    async def run(
        self,
        messages: str | Sequence[AnyMessage],
        observe: Callable[[Emitter], Any] | None = None,
    ) -> dict[str, Any]:
        """One agent run: the result dict (see ``summary``) plus the raw steps and messages."""
        query = messages if isinstance(messages, str) else _last_user_text(messages)
        rag_tool = RagSearchTool(self.rag)
        try:
            agent = self.build(rag_tool)
        except LLMNotConfiguredError:
            RUNS.labels(WORKFLOW, "none", "no_llm").inc()
            raise
        start = time.perf_counter()
        try:
            run = agent.run(
                messages if isinstance(messages, str) else list(messages),
                max_iterations=self.settings.beeai_max_iterations,
                max_retries_per_step=1,
                total_max_retries=2,
            )
            output = await (run.observe(observe) if observe else run)
        except Exception as exc:
            RUNS.labels(WORKFLOW, _route(rag_tool), "llm_error").inc()
            raise AgentFailedError(
                f"the BeeAI agent failed (LLM at {self.settings.llm_url}, model "
                f"{self.settings.llm_model}): {_root_cause(exc)}"
            ) from exc
        finally:
            NODE_SECONDS.labels(WORKFLOW, "agent").observe(time.perf_counter() - start)
        state = output.state
        LLM_TOKENS.labels(WORKFLOW, "agent", "prompt").inc(state.usage.prompt_tokens or 0)
        LLM_TOKENS.labels(WORKFLOW, "agent", "completion").inc(state.usage.completion_tokens or 0)
        RUNS.labels(WORKFLOW, _route(rag_tool), "ok").inc()
        steps = [
            {
                "tool": step.tool.name if step.tool else None,
                "input": step.input,
                "output": step.output.get_text_content(),
                "error": str(step.error) if step.error else None,
            }
            for step in state.steps
        ]
        return {
            "query": query,
            "answer": compose_answer(output.last_message.text, rag_tool),
            "model_answer": output.last_message.text,
            "sources": rag_tool.sources,
            "retrieval_error": "; ".join(rag_tool.errors) if rag_tool.errors else None,
            "tools_used": [s["tool"] for s in steps if s["tool"] != "final_answer"],
            "iterations": state.iteration,
            "usage": {
                "prompt_tokens": state.usage.prompt_tokens or 0,
                "completion_tokens": state.usage.completion_tokens or 0,
            },
            "model": self.settings.llm_model,
            "steps": steps,
            # role + content parts (text, tool calls, tool results), JSON-safe.
            "messages": [m.to_plain() for m in state.memory.messages],
        }


def _root_cause(exc: BaseException) -> str:
    """The innermost cause: beeai-framework wraps the HTTP client's error ("Chat Model error")."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}"


def _route(rag_tool: RagSearchTool) -> str:
    return "rag" if rag_tool.sources or rag_tool.errors else "direct"


def _last_user_text(messages: Sequence[AnyMessage]) -> str:
    return next((m.text for m in reversed(messages) if isinstance(m, UserMessage)), "")


def compose_answer(text: str, rag_tool: RagSearchTool) -> str:
    """The model's answer with the sources the RAG tool really returned (numbered as the model
    saw them), or, when no search succeeded, a first line saying why there was no context."""
    if rag_tool.sources:
        lines = [
            f"[{n}] {s['document_id']} (chunk {s['chunk_index']}, score {s['score']:.3f})"
            for n, s in enumerate(rag_tool.sources, start=1)
        ]
        return f"{text}\n\nSources:\n" + "\n".join(lines)
    if rag_tool.errors:
        why = "; ".join(rag_tool.errors)
        return (
            f"No context: retrieval failed ({why}). This answer is from the model alone.\n\n{text}"
        )
    return text


def summary(result: dict[str, Any], verbose: bool = False) -> dict[str, Any]:
    """The CLI's and the A2A data part's view of a run (everything with ``verbose``)."""
    if verbose:
        return result
    keep = ("query", "answer", "sources", "retrieval_error", "tools_used", "iterations", "usage")
    out = {k: result[k] for k in keep}
    out["sources"] = [
        {k: s[k] for k in ("document_id", "chunk_index", "score")} for s in result["sources"]
    ]
    return out
