"""Shared response documentation and the event-stream response of the routers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from sse_starlette import EventSourceResponse

from rag_pipeline.models import ErrorResponse
from rag_pipeline.pipeline import SSE

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
    503: {"model": ErrorResponse, "description": "Vector store or embedder unavailable"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown collection"}
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Text or request over the configured limit"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Conflicts with the collection's state"}
}


def event_stream(events: Iterator[SSE]) -> EventSourceResponse:
    """Server-sent events framed by sse-starlette: lines end with "\n" as they always did
    here (and in OpenAI's stream), a comment line every 15 s keeps proxies from closing a
    quiet stream. The library cuts open streams on SIGTERM; ours are bounded (LLM_TIMEOUT_S)
    and finish instead, as any other answer does: uvicorn waits for them, Kubernetes'
    terminationGracePeriodSeconds bounds the wait."""
    return EventSourceResponse(events, sep="\n", shutdown_grace_period=math.inf)
