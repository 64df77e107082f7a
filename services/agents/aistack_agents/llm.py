"""Chat completions against any OpenAI-compatible endpoint, with token accounting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import openai

from aistack_agents.metrics import LLM_TOKENS
from aistack_agents.settings import NO_LLM_HELP, Settings


class LLMNotConfiguredError(RuntimeError):
    """No LLM_URL: the agents cannot answer, and say how to configure one."""

    def __init__(self) -> None:
        super().__init__(NO_LLM_HELP)


class LLMError(RuntimeError):
    """The LLM endpoint failed (unreachable, HTTP error, empty reply)."""


@dataclass(frozen=True)
class ToolCallRequest:
    """A function the model asked to call (OpenAI tool_calls); arguments already parsed."""

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    tool_calls: list[ToolCallRequest] = field(default_factory=list)


class LLMClient:
    def __init__(self, settings: Settings, workflow: str = "router") -> None:
        if not settings.llm_url:
            raise LLMNotConfiguredError()
        self.settings = settings
        self.workflow = workflow
        # Retries are the graph's business (stricter prompts), not the HTTP client's.
        self._client = openai.AsyncOpenAI(
            base_url=settings.llm_url,
            api_key=settings.llm_api_key or "not-needed",
            timeout=settings.llm_timeout_s,
            max_retries=0,
        )

    async def chat(
        self,
        node: str,
        messages: list[dict[str, Any]],
        *,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Reply:
        """One completion. With ``tools`` (OpenAI function specs) the reply may be tool calls
        instead of text; their arguments must be a JSON object, else LLMError."""
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        try:
            resp = await self._client.chat.completions.create(
                model=self.settings.llm_model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.settings.temperature if temperature is None else temperature,
                max_tokens=self.settings.max_tokens,
                **extra,
            )
        except openai.OpenAIError as exc:
            raise LLMError(f"LLM at {self.settings.llm_url} failed: {exc}") from exc
        message = resp.choices[0].message if resp.choices else None
        calls = [
            self._tool_call(c.id, c.function.name, c.function.arguments)
            for c in (message.tool_calls or [] if message else [])
            if c.type == "function"
        ]
        if message is None or (message.content is None and not calls):
            raise LLMError(f"LLM at {self.settings.llm_url} returned no message content")
        usage = resp.usage
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        LLM_TOKENS.labels(self.workflow, node, "prompt").inc(prompt)
        LLM_TOKENS.labels(self.workflow, node, "completion").inc(completion)
        return Reply(message.content or "", prompt, completion, calls)

    def _tool_call(self, call_id: str, name: str, raw: str) -> ToolCallRequest:
        try:
            args = json.loads(raw or "{}")
        except json.JSONDecodeError:
            args = None
        if not isinstance(args, dict):
            raise LLMError(
                f"LLM at {self.settings.llm_url} called {name} with arguments that are not "
                f"a JSON object: {raw!r}"
            )
        return ToolCallRequest(call_id, name, args, raw)

    async def ready(self) -> str:
        """'ok' when the endpoint lists its models, else why not."""
        try:
            await self._client.models.list()
        except openai.OpenAIError as exc:
            return f"unreachable: {exc}"
        return "ok"

    async def close(self) -> None:
        await self._client.close()
