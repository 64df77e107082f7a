"""The router's graph state (exactly the issue's fields, plus what a run must record)."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Classification = Literal["factual", "analytical", "creative"]
Route = Literal["rag", "direct"]
CLASSIFICATIONS: tuple[Classification, ...] = ("factual", "analytical", "creative")
ROUTES: tuple[Route, ...] = ("rag", "direct")


class ContextChunk(TypedDict):
    """One source from the RAG service, or one MCP tool result (document_id ``mcp:<tool>``,
    metadata ``{"source": "mcp", "tool", "arguments"}``); its position + 1 is its citation
    number."""

    document_id: str
    chunk_index: int
    text: str
    score: float
    metadata: dict[str, Any]


class ChatMessage(TypedDict):
    """One message of an LLM exchange, tagged with the node that sent or received it. An
    assistant message that calls tools lists them (id, name, arguments); a tool message is
    one call's result, by its id."""

    node: str
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: NotRequired[list[dict[str, Any]]]
    tool_call_id: NotRequired[str]


class ParseFallback(TypedDict):
    """Unparseable LLM output. outcome 'retried': the stricter prompt parsed; 'default': it
    did not either, and ``used`` is the documented default that was applied."""

    node: str
    outcome: Literal["retried", "default"]
    raw: list[str]
    used: dict[str, Any]


class RouterState(TypedDict):
    # The state.
    query: str
    classification: Classification | None
    context: list[ContextChunk]
    response: str
    route: Route | None
    quality_score: int | None
    quality_passed: bool
    messages: list[ChatMessage]
    # Recorded so that a caller can tell what happened.
    retrieval_error: str | None
    # MCP failures (server unreachable or refusing, a tool that failed): the answer came
    # without that tool output, never with an invented one.
    tool_errors: list[str]
    parse_fallbacks: list[ParseFallback]
    attempts: int  # generate_response runs (1 + regenerations)
    quality_reason: str
    # The run's OpenTelemetry trace id (32 hex digits; MLflow shows it as tr-<id>), None
    # when no tracer provider records spans.
    trace_id: str | None


def initial_state(query: str, trace_id: str | None = None) -> RouterState:
    """A fresh run: every field set, so a reused checkpoint thread never leaks old values."""
    return RouterState(
        query=query,
        classification=None,
        context=[],
        response="",
        route=None,
        quality_score=None,
        quality_passed=False,
        messages=[],
        retrieval_error=None,
        tool_errors=[],
        parse_fallbacks=[],
        attempts=0,
        quality_reason="",
        trace_id=trace_id,
    )
