"""Chat completions against any OpenAI-compatible endpoint, with token accounting."""

from __future__ import annotations

from dataclasses import dataclass

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
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int


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
        self, node: str, messages: list[dict[str, str]], *, temperature: float | None = None
    ) -> Reply:
        try:
            resp = await self._client.chat.completions.create(
                model=self.settings.llm_model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.settings.temperature if temperature is None else temperature,
                max_tokens=self.settings.max_tokens,
            )
        except openai.OpenAIError as exc:
            raise LLMError(f"LLM at {self.settings.llm_url} failed: {exc}") from exc
        if not resp.choices or resp.choices[0].message.content is None:
            raise LLMError(f"LLM at {self.settings.llm_url} returned no message content")
        usage = resp.usage
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        LLM_TOKENS.labels(self.workflow, node, "prompt").inc(prompt)
        LLM_TOKENS.labels(self.workflow, node, "completion").inc(completion)
        return Reply(resp.choices[0].message.content, prompt, completion)

    async def ready(self) -> str:
        """'ok' when the endpoint lists its models, else why not."""
        try:
            await self._client.models.list()
        except openai.OpenAIError as exc:
            return f"unreachable: {exc}"
        return "ok"

    async def close(self) -> None:
        await self._client.close()
