"""The pipeline as an OpenAI-compatible chat model: one model per collection (``rag:<name>``),
retrieval on the last user message, the earlier turns passed on to the LLM, and the sources
as numbered citations in the answer and in a structured ``sources`` field."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag_pipeline.generation import GenerationError, build_messages, extractive_answer
from rag_pipeline.models import COLLECTION_PATTERN, QueryRequest, Source
from rag_pipeline.pipeline import SSE, Pipeline, Timer

MODEL_PREFIX = "rag:"


class ChatMessage(BaseModel):
    # Other fields (name, tool_calls, ...) are accepted and not used.
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text (the text parts of a multi-part content, joined)."""
        if isinstance(self.content, list):
            return "\n".join(
                str(p.get("text", "")) for p in self.content if p.get("type") == "text"
            )
        return self.content or ""


class ChatRequest(BaseModel):
    """An OpenAI chat completion request. Fields the pipeline has no use for (top_p, n, stop,
    user, ...) are accepted and ignored, as many OpenAI-compatible servers do."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="rag:<collection> (GET /v1/models lists them)")
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    # Retrieval knobs (extensions, like the `sources` field of the answer).
    top_k: int = Field(10, ge=1, le=1000)
    top_n: int = Field(3, ge=1, le=1000)


class ChatError(ValueError):
    """A request the chat face cannot answer (HTTP status, OpenAI error type)."""

    def __init__(self, message: str, status: int, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code


def collection_of(model: str) -> str:
    name = model[len(MODEL_PREFIX) :]
    if not model.startswith(MODEL_PREFIX) or not re.fullmatch(COLLECTION_PATTERN, name):
        raise ChatError(
            f"model {model!r} is not served here: the models are rag:<collection> (GET /v1/models)",
            404,
            "invalid_request_error",
            "model_not_found",
        )
    return name


def question_of(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user" and message.text().strip():
            return message.text()
    raise ChatError(
        "messages hold no user message with text to retrieve for",
        422,
        "invalid_request_error",
    )


def source_entry(index: int, source: Source) -> dict[str, Any]:
    return {"index": index, **source.model_dump()}


def citations(sources: list[Source]) -> str:
    """The numbered source list appended to the answer."""
    if not sources:
        return ""
    lines = []
    for i, s in enumerate(sources, 1):
        title = s.metadata.get("title")
        named = f"{title} ({s.document_id})" if isinstance(title, str) and title else s.document_id
        lines.append(f"[{i}] {named}")
    return "\n\nSources:\n" + "\n".join(lines)


def llm_messages(
    request: ChatRequest, question: str, sources: list[Source], system: str
) -> list[dict[str, str]]:
    """The service's system prompt (then the client's system messages), the earlier turns,
    and the last user message with the numbered context passages."""
    last = max(i for i, m in enumerate(request.messages) if m.role == "user" and m.text().strip())
    client_system = [m.text() for m in request.messages if m.role in ("system", "developer")]
    prompt = "\n\n".join([system, *client_system])
    history = [
        {"role": m.role, "content": m.text()}
        for m in request.messages[:last]
        if m.role in ("user", "assistant") and m.text()
    ]
    *_, final = build_messages(question, sources, prompt)
    return [{"role": "system", "content": prompt}, *history, final]


class ChatAnswer:
    """Retrieval done; the answer produced by ``complete()`` or ``chunks()``."""

    def __init__(self, pipeline: Pipeline, request: ChatRequest) -> None:
        self.pipeline = pipeline
        self.request = request
        self.collection = collection_of(request.model)
        self.question = question_of(request)
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.timer = Timer(pipeline.tracer)
        query = QueryRequest(
            query=self.question,
            collection=self.collection,
            top_k=request.top_k,
            top_n=request.top_n,
            generate=False,
        )
        self.sources = pipeline.sources(pipeline.retrieve(query, self.timer))
        self.mode: Literal["generated", "extractive"] = "generated"
        self.error: str | None = None
        self.reason: str | None = None

    @property
    def _overrides(self) -> dict[str, Any]:
        r = self.request
        return {"temperature": r.temperature, "max_tokens": r.max_completion_tokens or r.max_tokens}

    def _extractive(self, exc: GenerationError | None) -> str:
        self.mode = "extractive"
        if exc is None:
            self.reason = "no_llm"
        else:
            self.pipeline.note_generation_error(exc)
            self.error, self.reason = str(exc), exc.reason
        if not self.sources:
            return "No passage of the collection matches the question."
        return extractive_answer(self.question, self.sources)

    def _messages(self) -> list[dict[str, str]]:
        generator = self.pipeline.generator
        system = generator.system_prompt if generator else ""
        return llm_messages(self.request, self.question, self.sources, system)

    def extra(self) -> dict[str, Any]:
        return {
            "sources": [source_entry(i, s) for i, s in enumerate(self.sources, 1)],
            "rag": {
                "collection": self.collection,
                "answer_mode": self.mode,
                "generation_error": self.error,
                "fallback_reason": self.reason,
                "latency_ms": self.timer.done(),
            },
        }

    def complete(self) -> dict[str, Any]:
        generator = self.pipeline.generator
        with self.timer.stage("generate"):
            if generator is None:
                answer = self._extractive(None)
            else:
                try:
                    answer = generator.generate(
                        self.question, self.sources, self._messages(), **self._overrides
                    )
                    if not answer:
                        raise GenerationError(
                            f"LLM at {generator.base_url} answered nothing", "empty_answer"
                        )
                except GenerationError as exc:
                    answer = self._extractive(exc)
        extra = self.extra()
        self.pipeline.metrics.observe_stages("chat", extra["rag"]["latency_ms"])
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer + citations(self.sources)},
                    "finish_reason": "stop",
                }
            ],
            **extra,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> SSE:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.request.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return {"data": json.dumps(body)}

    def chunks(self) -> Iterator[SSE]:
        """Server-sent events as OpenAI streams them: a first chunk with the role and the
        structured ``sources``, the answer's pieces as the LLM sends them, the numbered
        source list, a last chunk with ``finish_reason`` and ``rag`` (answer mode, errors,
        latency), then ``data: [DONE]``. An LLM that fails midway: the extractive answer
        follows what was sent, and ``rag.fallback_reason`` says why."""
        sources = [source_entry(i, s) for i, s in enumerate(self.sources, 1)]
        yield self._chunk({"role": "assistant", "content": ""}, sources=sources)
        generator = self.pipeline.generator
        t0 = time.perf_counter()
        span = self.pipeline.tracer.start_span("rag.generate")
        try:
            if generator is None:
                yield self._chunk({"content": self._extractive(None)})
            else:
                sent = False
                try:
                    pieces = generator.stream(
                        self.question, self.sources, self._messages(), **self._overrides
                    )
                    with closing(pieces):  # a client gone cancels the LLM request
                        for piece in pieces:
                            sent = sent or bool(piece.strip())
                            yield self._chunk({"content": piece})
                    if not sent:
                        raise GenerationError(
                            f"LLM at {generator.base_url} answered nothing", "empty_answer"
                        )
                except GenerationError as exc:
                    answer = self._extractive(exc)
                    yield self._chunk({"content": ("\n\n" if sent else "") + answer})
        finally:
            span.end()
        self.timer.stages["generate"] = (time.perf_counter() - t0) * 1000
        if self.sources:
            yield self._chunk({"content": citations(self.sources)})
        rag = self.extra()["rag"]
        self.pipeline.metrics.observe_stages("chat", rag["latency_ms"])
        yield self._chunk({}, "stop", rag=rag)
        yield {"data": "[DONE]"}
