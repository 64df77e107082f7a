"""Answer generation through any OpenAI-compatible chat endpoint, with numbered citations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rag_pipeline.sparse import tokenize

if TYPE_CHECKING:
    from rag_pipeline.models import Source
    from rag_pipeline.settings import Settings

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages provided. "
    "Cite every passage you rely on with its number in square brackets, e.g. [1] or [2][3]. "
    "If the context does not contain the answer, say that you do not know. "
    "Do not use outside knowledge."
)


class GenerationError(RuntimeError):
    pass


def build_messages(
    question: str, sources: list[Source], system_prompt: str
) -> list[dict[str, str]]:
    context = "\n\n".join(f"[{i}] {s.text}" for i, s in enumerate(sources, 1))
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"},
    ]


class Generator:
    """Thin wrapper over the openai SDK."""

    def __init__(self, settings: Settings) -> None:
        from openai import OpenAI

        url = settings.effective_llm_url
        if not url:
            raise GenerationError("no LLM configured (set LLM_URL or LOCALAI_URL)")
        self.client = OpenAI(
            base_url=url,
            api_key=settings.llm_api_key or "not-needed",
            timeout=settings.llm_timeout_s,
            max_retries=0,  # a down LLM must fail fast: retrieval results are still returned
        )
        self.model = settings.llm_model
        self.temperature = settings.temperature
        self.max_tokens = settings.max_tokens
        self.system_prompt = settings.system_prompt or DEFAULT_SYSTEM_PROMPT

    def generate(self, question: str, sources: list[Source]) -> str:
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=build_messages(question, sources, self.system_prompt),  # type: ignore[arg-type]
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except openai.OpenAIError as exc:
            raise GenerationError(f"LLM at {self.client.base_url} failed: {exc}") from exc
        return (response.choices[0].message.content or "").strip() if response.choices else ""

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]:
        import openai

        try:
            stream = self.client.chat.completions.create(
                model=self.model,
                messages=build_messages(question, sources, self.system_prompt),  # type: ignore[arg-type]
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                stream=True,
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except openai.OpenAIError as exc:
            raise GenerationError(f"LLM at {self.client.base_url} failed: {exc}") from exc

    def close(self) -> None:
        self.client.close()


_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


def extractive_answer(question: str, sources: list[Source], max_sentences: int = 3) -> str:
    """Without an LLM: the sentence of each top source that best matches the question, cited."""
    q = set(tokenize(question))
    parts = []
    for i, source in enumerate(sources[:max_sentences], 1):
        sentences = [s.strip() for s in _SENTENCE_RE.split(source.text) if s.strip()]
        if not sentences:
            continue
        best = max(sentences, key=lambda s: len(q & set(tokenize(s))))
        if len(best) > 400:
            best = best[:400].rsplit(" ", 1)[0] + " …"
        parts.append(f"{best} [{i}]")
    return " ".join(parts)
