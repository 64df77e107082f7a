"""Query endpoint (JSON or server-sent events)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse

from rag_pipeline.dependencies import PipelineDep
from rag_pipeline.models import QueryRequest, QueryResponse
from rag_pipeline.routers.common import ERRORS, NOT_FOUND, TOO_LARGE

router = APIRouter(tags=["query"], responses={**ERRORS, **NOT_FOUND, **TOO_LARGE})


@router.post(
    "/query",
    response_model=QueryResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def query(body: QueryRequest, pipeline: PipelineDep) -> QueryResponse | StreamingResponse:
    """Retrieve, re-rank and answer with numbered citations. ``stream: true`` answers as SSE."""
    limit = pipeline.settings.max_query_chars
    if len(body.query) > limit:
        raise HTTPException(
            413,
            f"query has {len(body.query)} characters; the limit is {limit} (MAX_QUERY_CHARS)",
        )
    if body.stream:
        return StreamingResponse(pipeline.query_stream(body), media_type="text/event-stream")
    return pipeline.query(body)
