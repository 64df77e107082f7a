"""Answer generation through any OpenAI-compatible chat endpoint, with numbered citations."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import httpx

from rag_pipeline.sparse import tokenize

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from rag_pipeline.models import Source
    from rag_pipeline.settings import Settings

log = logging.getLogger("rag_pipeline.generation")

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages provided. "
    "Cite every passage you rely on with its number in square brackets, e.g. [1] or [2][3]. "
    "If the context does not contain the answer, say that you do not know. "
    "Do not use outside knowledge."
)


# Why an answer is extractive rather than generated (QueryResponse.fallback_reason).
FallbackReason = Literal["no_llm", "llm_error", "deadline", "empty_answer"]

# How long the caller waits past the deadline for the event loop to report it (it normally
# reports at the deadline; this only covers a loop that is slow to be scheduled).
_GRACE_S = 1.0


class GenerationError(RuntimeError):
    """The LLM call failed; ``reason`` says how (metrics label, response field)."""

    def __init__(self, message: str, reason: FallbackReason = "llm_error") -> None:
        super().__init__(message)
        self.reason: FallbackReason = reason


# What the streaming task hands to the caller's thread: a piece, the end, or the failure.
_Event = tuple[Literal["token", "end", "error"], str | GenerationError | None]


def build_messages(
    question: str, sources: list[Source], system_prompt: str
) -> list[dict[str, str]]:
    context = "\n\n".join(f"[{i}] {s.context or s.text}" for i, s in enumerate(sources, 1))
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"},
    ]


class Generator:
    """The openai SDK's async client on an event loop of its own, behind a blocking API.

    LLM_TIMEOUT_S is one wall-clock deadline per call: connect, waiting for the first byte
    and the whole answer, streamed or not. httpx timeouts are per socket operation, so a
    server that sends a byte every second would never trip them; the deadline is an
    ``asyncio.timeout`` around the whole call, which cancels the request (and closes its
    connection) wherever it is blocked.
    """

    def __init__(self, settings: Settings) -> None:
        url = settings.effective_llm_url
        if not url:
            raise GenerationError("no LLM configured (set LLM_URL or LOCALAI_URL)", "no_llm")
        self.base_url = url
        self.deadline_s = settings.llm_timeout_s
        self.model = settings.llm_model
        self.temperature = settings.temperature
        self.max_tokens = settings.max_tokens
        self.system_prompt = settings.system_prompt or DEFAULT_SYSTEM_PROMPT
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="llm-client", daemon=True
        )
        self._thread.start()
        connect = min(settings.llm_connect_timeout_s, self.deadline_s)
        api_key = settings.llm_api_key or "not-needed"

        async def make_client() -> AsyncOpenAI:
            from openai import AsyncOpenAI

            return AsyncOpenAI(
                base_url=url,
                api_key=api_key,
                # Per-operation limits as a second line; the deadline below is what binds.
                timeout=httpx.Timeout(self.deadline_s, connect=connect),
                max_retries=0,  # a down LLM must fail fast: retrieval results are still returned
            )

        # Made on the loop that uses it (the async transport belongs to one loop).
        self.client = asyncio.run_coroutine_threadsafe(make_client(), self._loop).result()

    def _deadline_error(self) -> GenerationError:
        return GenerationError(
            f"LLM at {self.base_url} did not finish its answer within the deadline of "
            f"{self.deadline_s:g} s (LLM_TIMEOUT_S)",
            "deadline",
        )

    def _error(self, exc: BaseException) -> GenerationError:
        return GenerationError(f"LLM at {self.base_url} failed: {exc or type(exc).__name__}")

    def _request(
        self,
        question: str,
        sources: list[Source],
        stream: bool,
        messages: list[dict[str, str]] | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """The chat request: ``messages`` (else the question with its numbered sources);
        ``overrides``: temperature / max_tokens a caller asked for (None: the settings')."""
        return {
            "model": self.model,
            "messages": messages or build_messages(question, sources, self.system_prompt),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **{k: v for k, v in overrides.items() if v is not None},
            "stream": stream,
        }

    async def _complete(self, request: dict[str, Any]) -> str:
        try:
            async with asyncio.timeout(self.deadline_s):
                response = await self.client.chat.completions.create(**request)
        except TimeoutError as exc:
            raise self._deadline_error() from exc
        except Exception as exc:  # SDK and transport errors alike: the caller falls back
            raise self._error(exc) from exc
        return (response.choices[0].message.content or "").strip() if response.choices else ""

    def generate(
        self,
        question: str,
        sources: list[Source],
        messages: list[dict[str, str]] | None = None,
        **overrides: Any,
    ) -> str:
        request = self._request(question, sources, False, messages, **overrides)
        future = asyncio.run_coroutine_threadsafe(self._complete(request), self._loop)
        try:
            return future.result(timeout=self.deadline_s + _GRACE_S)
        except concurrent.futures.TimeoutError:
            raise self._deadline_error() from None
        finally:
            future.cancel()  # no-op when done; else stops the request

    async def _pump(self, request: dict[str, Any], out: queue.SimpleQueue[_Event]) -> None:
        try:
            async with asyncio.timeout(self.deadline_s):
                stream = await self.client.chat.completions.create(**request)
                try:
                    async for chunk in stream:
                        if chunk.choices and chunk.choices[0].delta.content:
                            out.put(("token", chunk.choices[0].delta.content))
                finally:
                    await stream.close()
            out.put(("end", None))
        except TimeoutError:
            out.put(("error", self._deadline_error()))
        except Exception as exc:  # SDK errors and transport errors raised mid-stream
            out.put(("error", self._error(exc)))

    def stream(
        self,
        question: str,
        sources: list[Source],
        messages: list[dict[str, str]] | None = None,
        **overrides: Any,
    ) -> Iterator[str]:
        """Yield answer pieces as they arrive; raise GenerationError on failure or deadline.
        Closing the iterator early (client gone) cancels the request."""
        deadline = time.monotonic() + self.deadline_s
        events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        request = self._request(question, sources, True, messages, **overrides)
        future = asyncio.run_coroutine_threadsafe(self._pump(request, events), self._loop)
        try:
            while True:
                wait = max(0.0, deadline - time.monotonic()) + _GRACE_S
                try:
                    kind, value = events.get(timeout=wait)
                except queue.Empty:
                    raise self._deadline_error() from None
                if kind == "token":
                    yield str(value)
                elif kind == "end":
                    return
                elif isinstance(value, GenerationError):  # kind == "error"
                    raise value
        finally:
            future.cancel()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.client.close(), self._loop).result(5)
        except Exception:  # closing is best effort; the loop goes anyway
            log.debug("closing the LLM client failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


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
