"""The query router as a LangGraph StateGraph.

classify_query → retrieve_context (route rag) → generate_response → check_quality, and back to
generate_response once when the self-evaluation fails. With MCP_URL, generate_response's first
run offers the MCP server's tools to the LLM (OpenAI tool calling, at most
MCP_MAX_TOOL_ROUNDS rounds): each result becomes a numbered, citable context entry; failures
are recorded in ``tool_errors`` and the answer still comes. Every node is timed (Prometheus) and
traced: one OpenTelemetry trace per run, a root span ``router.run`` (query, route, score) with
one child span per node run.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from langgraph.graph import END, START, StateGraph
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from aistack_agents import mcp_client
from aistack_agents.llm import LLMClient, LLMError, Reply, ToolCallRequest
from aistack_agents.metrics import NODE_SECONDS, PARSE_FALLBACKS, RUNS, record_quality
from aistack_agents.rag import RetrievalError, Retriever, make_retriever
from aistack_agents.router import prompts
from aistack_agents.router.parsing import parse_classification, parse_score
from aistack_agents.router.state import (
    ChatMessage,
    ContextChunk,
    ParseFallback,
    RouterState,
    initial_state,
)
from aistack_agents.settings import Settings
from aistack_agents.telemetry import trace_id_of, tracer
from aistack_agents.tools import function_tool

WORKFLOW = "router"
# Documented defaults when the LLM's output stays unparseable after the stricter retry:
# classification → factual via rag (a grounded answer is the safe choice; the answer says so
# when the knowledge base has nothing); score → unknown (None), not passed, no regeneration
# (a regeneration is for an answer judged poor, not for a judge that did not answer).
DEFAULT_CLASSIFICATION = {"classification": "factual", "route": "rag"}
DEFAULT_SCORE: dict[str, Any] = {"quality_score": None, "quality_passed": False}

T = TypeVar("T")
Node = Callable[[RouterState], Awaitable[dict[str, Any]]]


def _no_context_notice(reason: str) -> str:
    return f"No context: {reason}. This answer is from the model alone, without the knowledge base."


class QueryRouter:
    """Owns the LLM client, the retriever (RAG service or its Qdrant collection) and the
    compiled graph."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm: LLMClient | None = None,
        rag: Retriever | None = None,
        checkpointer: Any = None,
    ) -> None:
        self.settings = settings
        self.llm = llm or LLMClient(settings, WORKFLOW)  # raises LLMNotConfiguredError
        self.rag = rag or make_retriever(settings)  # RETRIEVAL_BACKEND: HTTP API or Qdrant
        self.graph = self._build().compile(checkpointer=checkpointer)

    # -- graph -----------------------------------------------------------------------------
    def _build(self) -> StateGraph:
        g = StateGraph(RouterState)
        g.add_node("classify_query", self._instrument("classify_query", self.classify_query))
        g.add_node("retrieve_context", self._instrument("retrieve_context", self.retrieve_context))
        g.add_node(
            "generate_response", self._instrument("generate_response", self.generate_response)
        )
        g.add_node("check_quality", self._instrument("check_quality", self.check_quality))
        g.add_edge(START, "classify_query")
        g.add_conditional_edges(
            "classify_query",
            lambda s: "retrieve_context" if s["route"] == "rag" else "generate_response",
            ["retrieve_context", "generate_response"],
        )
        g.add_edge("retrieve_context", "generate_response")
        g.add_edge("generate_response", "check_quality")
        g.add_conditional_edges("check_quality", self._after_quality, ["generate_response", END])
        return g

    def _after_quality(self, state: RouterState) -> str:
        if state["quality_passed"] or state["quality_score"] is None:
            return END
        if state["attempts"] > self.settings.max_regenerations:
            return END
        return "generate_response"

    @staticmethod
    def _instrument(name: str, fn: Node) -> Node:
        async def run(state: RouterState) -> dict[str, Any]:
            start = time.perf_counter()
            with tracer().start_as_current_span(f"router.{name}") as span:
                span.set_attribute("agents.workflow", WORKFLOW)
                span.set_attribute("agents.node", name)
                try:
                    update = await fn(state)
                finally:
                    NODE_SECONDS.labels(WORKFLOW, name).observe(time.perf_counter() - start)
                for key in ("route", "classification", "quality_score", "retrieval_error"):
                    if update.get(key) is not None:
                        span.set_attribute(f"agents.{key}", update[key])
                if "context" in update:
                    span.set_attribute("agents.context_chunks", len(update["context"]))
            return update

        return run

    # -- LLM exchange with one stricter retry ------------------------------------------------
    async def _ask_structured(
        self,
        node: str,
        conversation: list[dict[str, str]],
        strict: str,
        parse: Callable[[str], T | None],
    ) -> tuple[T | None, list[ChatMessage], ParseFallback | None]:
        log: list[ChatMessage] = [
            ChatMessage(node=node, role=m["role"], content=m["content"])  # type: ignore[typeddict-item]
            for m in conversation
        ]
        raw: list[str] = []
        for attempt in (1, 2):
            reply = await self.llm.chat(node, conversation, temperature=0.0)
            log.append(ChatMessage(node=node, role="assistant", content=reply.text))
            raw.append(reply.text)
            parsed = parse(reply.text)
            if parsed is not None:
                if attempt == 1:
                    return parsed, log, None
                PARSE_FALLBACKS.labels(WORKFLOW, node, "retried").inc()
                return parsed, log, ParseFallback(node=node, outcome="retried", raw=raw, used={})
            if attempt == 1:
                conversation = [
                    *conversation,
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": strict},
                ]
                log.append(ChatMessage(node=node, role="user", content=strict))
        PARSE_FALLBACKS.labels(WORKFLOW, node, "default").inc()
        return None, log, ParseFallback(node=node, outcome="default", raw=raw, used={})

    # -- nodes -------------------------------------------------------------------------------
    async def classify_query(self, state: RouterState) -> dict[str, Any]:
        conversation = [
            {"role": "system", "content": prompts.CLASSIFY_SYSTEM},
            {"role": "user", "content": state["query"]},
        ]
        parsed, log, fallback = await self._ask_structured(
            "classify_query", conversation, prompts.CLASSIFY_STRICT, parse_classification
        )
        if parsed is None:
            label, route = DEFAULT_CLASSIFICATION["classification"], DEFAULT_CLASSIFICATION["route"]
        else:
            label, route = parsed
        fallbacks = list(state["parse_fallbacks"])
        if fallback is not None:
            fallback["used"] = {"classification": label, "route": route}
            fallbacks.append(fallback)
        return {
            "classification": label,
            "route": route,
            "messages": [*state["messages"], *log],
            "parse_fallbacks": fallbacks,
        }

    async def retrieve_context(self, state: RouterState) -> dict[str, Any]:
        try:
            context = await self.rag.retrieve(state["query"])
        except RetrievalError as exc:
            # Never a simulated context: the state and the answer say retrieval failed.
            return {"context": [], "retrieval_error": str(exc)}
        return {"context": context, "retrieval_error": None}

    async def generate_response(self, state: RouterState) -> dict[str, Any]:
        context = list(state["context"])
        reason: str | None = None
        if state["route"] == "rag" and not context:
            reason = (
                f"retrieval failed ({state['retrieval_error']})"
                if state["retrieval_error"]
                else "the knowledge base returned no passages for this question"
            )
        previous = None
        if state["attempts"] > 0:
            previous = (state["response"], state["quality_score"], state["quality_reason"])
        tool_errors = list(state["tool_errors"])
        # Tools on the first answer only: a regeneration has their results in its context.
        tools = await self._mcp_tools(tool_errors) if state["attempts"] == 0 else {}
        system = prompts.GENERATE_SYSTEM + (prompts.GENERATE_TOOLS if tools else "")
        conversation: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {
                "role": "user",
                "content": prompts.generate_user(state["query"], context, reason, previous),
            },
        ]
        log = [
            ChatMessage(node="generate_response", role=m["role"], content=m["content"])
            for m in conversation
        ]
        reply = await self._answer(conversation, log, tools, context, tool_errors)
        answer = reply.text.strip()
        if context:
            answer = f"{answer}\n\n{prompts.sources_footer(context)}"
        elif reason:
            answer = f"{_no_context_notice(reason)}\n\n{answer}"
        return {
            "response": answer,
            "context": context,
            "tool_errors": tool_errors,
            "attempts": state["attempts"] + 1,
            "messages": [*state["messages"], *log],
        }

    # -- MCP tools -------------------------------------------------------------------------------
    async def _mcp_tools(self, errors: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """OpenAI function name -> (MCP tool name, function spec); empty without MCP_URL or
        when the server cannot be listed (recorded in ``errors``)."""
        url = self.settings.mcp_url
        if not url:
            return {}
        try:
            listed = await mcp_client.list_tools(url, self.settings.mcp_api_key)
        except mcp_client.MCPError as exc:
            errors.append(str(exc))
            return {}
        return {
            mcp_client.function_name(t.name): (
                t.name,
                function_tool(
                    mcp_client.function_name(t.name),
                    t.description or f"MCP tool {t.name}",
                    t.inputSchema or {"type": "object", "properties": {}},
                ),
            )
            for t in listed
        }

    async def _answer(
        self,
        conversation: list[dict[str, Any]],
        log: list[ChatMessage],
        tools: dict[str, tuple[str, dict[str, Any]]],
        context: list[ContextChunk],
        errors: list[str],
    ) -> Reply:
        """The LLM's answer after at most ``mcp_max_tool_rounds`` rounds of tool calls (then
        once more without tools, so that an answer comes). Appends to all but ``tools``."""
        node = "generate_response"
        specs = [spec for _, spec in tools.values()]
        for _ in range(self.settings.mcp_max_tool_rounds if tools else 0):
            reply = await self.llm.chat(node, conversation, tools=specs)
            if not reply.tool_calls:
                break
            calls = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.raw_arguments},
                }
                for c in reply.tool_calls
            ]
            conversation.append(
                {"role": "assistant", "content": reply.text or None, "tool_calls": calls}
            )
            log.append(
                ChatMessage(
                    node=node,
                    role="assistant",
                    content=reply.text,
                    tool_calls=[
                        {"id": c.id, "name": c.name, "arguments": c.arguments}
                        for c in reply.tool_calls
                    ],
                )
            )
            for call in reply.tool_calls:
                content = await self._call_tool(call, tools, context, errors)
                conversation.append({"role": "tool", "tool_call_id": call.id, "content": content})
                log.append(
                    ChatMessage(node=node, role="tool", content=content, tool_call_id=call.id)
                )
        else:
            reply = await self.llm.chat(node, conversation)
        log.append(ChatMessage(node=node, role="assistant", content=reply.text))
        return reply

    async def _call_tool(
        self,
        call: ToolCallRequest,
        tools: dict[str, tuple[str, dict[str, Any]]],
        context: list[ContextChunk],
        errors: list[str],
    ) -> str:
        """What the model reads back: ``[n] <result>`` (n: its new context entry), or why the
        call failed (recorded in ``errors``; no context entry)."""
        if call.name not in tools:
            errors.append(f"the LLM called {call.name!r}, which the MCP server does not offer")
            return f"Tool {call.name} does not exist; offered: {', '.join(tools)}"
        tool = tools[call.name][0]
        try:
            result = await mcp_client.call_tool(
                self.settings.mcp_url or "",
                mcp_client.auth_headers(self.settings.mcp_api_key),
                tool,
                call.arguments,
            )
        except mcp_client.MCPError as exc:
            errors.append(f"tool {tool}: {exc}")
            return f"Tool {tool} failed: {exc}"
        if result.is_error:
            errors.append(f"tool {tool} reported an error: {result.text}")
            return f"Tool {tool} reported an error: {result.text}"
        context.append(
            ContextChunk(
                document_id=f"mcp:{tool}",
                chunk_index=0,
                text=result.text,
                score=0.0,  # not ranked: the model asked for it
                metadata={"source": "mcp", "tool": tool, "arguments": call.arguments},
            )
        )
        return f"[{len(context)}] {result.text}"

    async def check_quality(self, state: RouterState) -> dict[str, Any]:
        conversation = [
            {"role": "system", "content": prompts.QUALITY_SYSTEM},
            {
                "role": "user",
                "content": prompts.quality_user(
                    state["query"], state["context"], state["response"]
                ),
            },
        ]
        parsed, log, fallback = await self._ask_structured(
            "check_quality", conversation, prompts.QUALITY_STRICT, parse_score
        )
        fallbacks = list(state["parse_fallbacks"])
        update: dict[str, Any] = {"messages": [*state["messages"], *log]}
        if parsed is None:
            update.update(DEFAULT_SCORE, quality_reason="unparseable quality score")
        else:
            score, why = parsed
            passed = score >= self.settings.quality_threshold
            update.update(quality_score=score, quality_passed=passed, quality_reason=why)
            record_quality(WORKFLOW, passed)
        if fallback is not None:
            fallback["used"] = {k: update[k] for k in ("quality_score", "quality_passed")}
            fallbacks.append(fallback)
        update["parse_fallbacks"] = fallbacks
        return update

    # -- running -------------------------------------------------------------------------------
    @staticmethod
    def config(thread_id: str | None) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id or str(uuid.uuid4())}}

    def _start_run(self, span: Span, query: str, config: dict[str, Any]) -> RouterState:
        span.set_attribute("agents.workflow", WORKFLOW)
        span.set_attribute("agents.query", query)
        span.set_attribute("agents.thread_id", config["configurable"]["thread_id"])
        # MLflow shows these as the trace's request and response (JSON, its own convention).
        span.set_attribute("mlflow.spanInputs", json.dumps({"query": query}))
        return initial_state(query, trace_id_of(span))

    @staticmethod
    def _end_run(span: Span, state: dict[str, Any]) -> None:
        for key in ("route", "classification", "quality_score", "quality_passed", "attempts"):
            if state.get(key) is not None:
                span.set_attribute(f"agents.{key}", state[key])
        if state.get("retrieval_error"):
            span.set_attribute("agents.retrieval_error", state["retrieval_error"])
        if state.get("tool_errors"):
            span.set_attribute("agents.tool_errors", state["tool_errors"])
        span.set_attribute("agents.context_chunks", len(state.get("context") or []))
        span.set_attribute("agents.parse_fallbacks", len(state.get("parse_fallbacks") or []))
        outputs = {k: state.get(k) for k in ("response", "route", "quality_score")}
        span.set_attribute("mlflow.spanOutputs", json.dumps(outputs, ensure_ascii=False))

    async def run(self, query: str, thread_id: str | None = None) -> RouterState:
        """One run to the end; LLMError propagates (the caller says what could not be done)."""
        config = self.config(thread_id)
        with tracer().start_as_current_span(f"{WORKFLOW}.run") as span:
            start = self._start_run(span, query, config)
            try:
                final = await self.graph.ainvoke(start, config)
            except LLMError:
                RUNS.labels(WORKFLOW, "unknown", "llm_error").inc()
                raise
            self._end_run(span, final)
        RUNS.labels(WORKFLOW, final["route"] or "unknown", "ok").inc()
        return final  # type: ignore[return-value]

    async def stream(
        self, query: str, thread_id: str | None = None
    ) -> AsyncIterator[tuple[str, RouterState]]:
        """(node name, state after it) as each node finishes; the last one is the result."""
        config = self.config(thread_id)
        span = tracer().start_span(f"{WORKFLOW}.run")
        run_context = trace.set_span_in_context(span)
        start = self._start_run(span, query, config)
        state: dict[str, Any] = dict(start)
        updates = self.graph.astream(start, config, stream_mode="updates")
        try:
            while True:
                # The run's span is current only while the graph advances: what the caller
                # does between two updates (A2A progress events) is not part of the run.
                token = otel_context.attach(run_context)
                try:
                    chunk = await anext(updates)
                except StopAsyncIteration:
                    break
                finally:
                    otel_context.detach(token)
                for node, update in chunk.items():
                    state.update(update or {})
                    yield node, state  # type: ignore[misc]
            self._end_run(span, state)
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            if isinstance(exc, LLMError):
                RUNS.labels(WORKFLOW, "unknown", "llm_error").inc()
            raise
        finally:
            await updates.aclose()
            span.end()
        RUNS.labels(WORKFLOW, state["route"] or "unknown", "ok").inc()

    async def close(self) -> None:
        await self.llm.close()
        await self.rag.close()


@asynccontextmanager
async def open_checkpointer(dsn: str | None) -> AsyncIterator[Any]:
    """The Postgres checkpointer for a DSN (tables created on first use), or None."""
    if not dsn:
        yield None
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
        await saver.setup()
        yield saver


def result_summary(state: RouterState) -> dict[str, Any]:
    """What the CLI prints without --verbose (and the A2A data part carries)."""
    return {
        "query": state["query"],
        "classification": state["classification"],
        "route": state["route"],
        "response": state["response"],
        "quality_score": state["quality_score"],
        "quality_passed": state["quality_passed"],
        "attempts": state["attempts"],
        "retrieval_error": state["retrieval_error"],
        "tool_errors": state["tool_errors"],
        "sources": [
            {"n": i, "document_id": c["document_id"], "chunk_index": c["chunk_index"]}
            for i, c in enumerate(state["context"], 1)
        ],
        "parse_fallbacks": [
            {"node": f["node"], "outcome": f["outcome"], "used": f["used"]}
            for f in state["parse_fallbacks"]
        ],
        "trace_id": state.get("trace_id"),
    }
