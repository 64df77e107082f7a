"""Query endpoint (JSON or server-sent events)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sse_starlette import EventSourceResponse

from rag_pipeline.dependencies import PipelineDep
from rag_pipeline.models import QueryRequest, QueryResponse
from rag_pipeline.routers.common import ERRORS, NOT_FOUND, TOO_LARGE, event_stream

router = APIRouter(tags=["query"], responses={**ERRORS, **NOT_FOUND, **TOO_LARGE})


@router.post(
    "/query",
    response_model=QueryResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def query(body: QueryRequest, pipeline: PipelineDep) -> QueryResponse | EventSourceResponse:
    """Retrieve, re-rank and answer with numbered citations. ``stream: true`` answers as SSE."""
    limit = pipeline.settings.max_query_chars
    if len(body.query) > limit:
        raise HTTPException(
            413,
            f"query has {len(body.query)} characters; the limit is {limit} (MAX_QUERY_CHARS)",
        )
    if body.stream:
        return event_stream(pipeline.query_stream(body))
    return pipeline.query(body)
