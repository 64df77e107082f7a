"""The OpenAI-compatible face, driven by the real ``openai`` client over loopback HTTP, with
guidellm mock-server as the service's LLM."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from rag_pipeline.chat import ChatRequest, llm_messages
from rag_pipeline.main import create_app
from rag_pipeline.models import Source
from rag_pipeline.pipeline import Pipeline
from tests.rag_pipeline.conftest import API_KEY, serve

DOCS = [
    {
        "document_id": "gpu",
        "text": "GPU time-slicing lets several pods share one NVIDIA GPU.",
        "metadata": {"title": "Time-slicing"},
    },
    {"document_id": "longhorn", "text": "Longhorn provides replicated block storage volumes."},
]


@pytest.fixture
def rag(
    make_pipeline: Callable[..., Pipeline], llm_url: str
) -> Iterator[Callable[..., openai.OpenAI]]:
    """An openai client of a served pipeline (``llm``: with guidellm mock-server as its LLM)."""
    servers: list[Any] = []

    def _open(llm: bool = True, key: str = API_KEY) -> openai.OpenAI:
        kwargs = {"llm_url": llm_url, "llm_model": "mock-llm"} if llm else {}
        pipeline = make_pipeline(api_key=API_KEY, **kwargs)
        from rag_pipeline.models import DocumentIn

        pipeline.ingest_batch([DocumentIn(**d) for d in DOCS], "docs")
        server = serve(create_app(pipeline=pipeline))
        url = server.__enter__()
        servers.append(server)
        return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)

    yield _open
    for s in servers:
        s.__exit__(None, None, None)


QUESTION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is Longhorn?"},
    {"role": "assistant", "content": "Block storage [1]."},
    {"role": "user", "content": "How do pods share a GPU?"},
]


def test_models_auth_and_errors(rag: Callable[..., openai.OpenAI]) -> None:
    client = rag(llm=False)
    assert [m.id for m in client.models.list()] == ["rag:docs"]
    assert client.models.retrieve("rag:docs").owned_by == "rag-pipeline"
    with pytest.raises(openai.NotFoundError, match="no collection 'nope'"):
        client.models.retrieve("rag:nope")
    with pytest.raises(openai.NotFoundError, match=r"rag:<collection>"):
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)  # type: ignore[arg-type]
    with pytest.raises(openai.UnprocessableEntityError, match="no user message"):
        client.chat.completions.create(
            model="rag:docs", messages=[{"role": "system", "content": "hi"}]
        )
    wrong = openai.OpenAI(base_url=str(client.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    # Without an LLM: the extractive answer, cited.
    answer = client.chat.completions.create(model="rag:docs", messages=QUESTION)  # type: ignore[arg-type]
    content = answer.choices[0].message.content or ""
    assert "share one NVIDIA GPU. [1]" in content and "Sources:\n[1] Time-slicing (gpu)" in content
    assert (answer.model_extra or {})["rag"]["fallback_reason"] == "no_llm"


def test_chat_completion_with_citations(rag: Callable[..., openai.OpenAI]) -> None:
    client = rag()
    answer = client.chat.completions.create(model="rag:docs", messages=QUESTION)  # type: ignore[arg-type]
    assert answer.object == "chat.completion" and answer.model == "rag:docs"
    choice = answer.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    text, cited = (choice.message.content or "").split("\n\nSources:\n")
    assert text.strip()  # the mock's words
    assert cited.splitlines() == ["[1] Time-slicing (gpu)", "[2] longhorn"]
    extra = answer.model_extra or {}
    assert [(s["index"], s["document_id"]) for s in extra["sources"]] == [
        (1, "gpu"),
        (2, "longhorn"),
    ]
    assert extra["sources"][0]["metadata"] == {"title": "Time-slicing"}
    assert extra["rag"]["answer_mode"] == "generated" and extra["rag"]["generation_error"] is None
    assert extra["rag"]["latency_ms"]["generate"] > 0


def test_streaming_chat_completion(rag: Callable[..., openai.OpenAI]) -> None:
    client = rag()
    chunks = list(
        client.chat.completions.create(model="rag:docs", messages=QUESTION, stream=True)  # type: ignore[arg-type]
    )
    first, last = chunks[0], chunks[-1]
    assert first.choices[0].delta.role == "assistant"
    assert [s["document_id"] for s in (first.model_extra or {})["sources"]] == ["gpu", "longhorn"]
    pieces = [c.choices[0].delta.content or "" for c in chunks]
    assert sum(1 for p in pieces if p) > 2  # the LLM's tokens arrive one by one
    assert "".join(pieces).endswith("\n\nSources:\n[1] Time-slicing (gpu)\n[2] longhorn")
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["rag"]["answer_mode"] == "generated"
    assert all(c.id == first.id and c.object == "chat.completion.chunk" for c in chunks)


def test_llm_gets_the_conversation_and_the_numbered_context() -> None:
    request = ChatRequest.model_validate({"model": "rag:docs", "messages": QUESTION})
    sources = [Source(document_id="gpu", chunk_index=0, text="GPU text.", score=1, rerank_score=1)]
    messages = llm_messages(request, "How do pods share a GPU?", sources, "Service prompt.")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "Service prompt.\n\nAnswer briefly."
    assert messages[1]["content"] == "What is Longhorn?"
    assert messages[-1]["content"] == (
        "Context:\n[1] GPU text.\n\nQuestion: How do pods share a GPU?"
    )
