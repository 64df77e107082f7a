"""The OpenAI-compatible face: GET /v1/models, GET /v1/models/{model}, POST
/v1/chat/completions (JSON or server-sent events). Errors of this face are in OpenAI's shape
(``{"error": {"message", "type", "param", "code"}}``) so that OpenAI clients show them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sse_starlette import EventSourceResponse

from rag_pipeline.chat import (
    MODEL_PREFIX,
    ChatAnswer,
    ChatError,
    ChatRequest,
    collection_of,
    question_of,
)
from rag_pipeline.dependencies import PipelineDep
from rag_pipeline.routers.common import ERRORS, event_stream

router = APIRouter(prefix="/v1", tags=["openai"], responses=ERRORS)

_OWNER = "rag-pipeline"


def openai_error(exc: ChatError) -> JSONResponse:
    body = {"error": {"message": str(exc), "type": exc.kind, "param": None, "code": exc.code}}
    return JSONResponse(body, status_code=exc.status)


def _model(name: str) -> dict[str, Any]:
    # No creation time is kept per collection; 0 as several OpenAI-compatible servers do.
    return {"id": MODEL_PREFIX + name, "object": "model", "created": 0, "owned_by": _OWNER}


@router.get("/models")
def list_models(pipeline: PipelineDep) -> dict[str, Any]:
    """One model per collection: ``rag:<collection>``."""
    return {"object": "list", "data": [_model(n) for n, _ in pipeline.list_collections()]}


@router.get("/models/{model}", response_model=None)
def get_model(model: str, pipeline: PipelineDep) -> dict[str, Any] | JSONResponse:
    try:
        name = collection_of(model)
        if name not in {n for n, _ in pipeline.list_collections()}:
            raise ChatError(
                f"model {model!r} does not exist (no collection {name!r})",
                404,
                "invalid_request_error",
                "model_not_found",
            )
    except ChatError as exc:
        return openai_error(exc)
    return _model(name)


@router.post(
    "/chat/completions",
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def chat_completions(
    body: ChatRequest, request: Request, pipeline: PipelineDep
) -> dict[str, Any] | JSONResponse | EventSourceResponse:
    """Retrieve from the model's collection with the last user message, answer with the
    service's LLM (extractively without one), sources numbered in the answer and listed in
    ``sources``; ``stream: true`` answers as OpenAI's server-sent events."""
    limit = pipeline.settings.max_query_chars
    try:
        name = collection_of(body.model)
        if not pipeline.store.collection_exists(name):
            raise ChatError(
                f"model {body.model!r} does not exist (no collection {name!r}); "
                "GET /v1/models lists them",
                404,
                "invalid_request_error",
                "model_not_found",
            )
        question = question_of(body)
        if len(question) > limit:
            raise ChatError(
                f"the last user message has {len(question)} characters; the limit is "
                f"{limit} (MAX_QUERY_CHARS)",
                413,
                "invalid_request_error",
            )
        answer = ChatAnswer(pipeline, body)
    except ChatError as exc:
        return openai_error(exc)
    except ValidationError as exc:  # the question as a query (no NUL, no lone surrogate)
        raise RequestValidationError(exc.errors()) from None
    if body.stream:
        return event_stream(answer.chunks())
    return answer.complete()
