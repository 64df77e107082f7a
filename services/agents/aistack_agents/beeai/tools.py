"""The RAG service as a beeai-framework tool (its HTTP API through aistack_agents.rag), and the
MCP server's tools (beeai-framework's MCPTool over streamable HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Self

from beeai_framework.context import RunContext
from beeai_framework.emitter import Emitter
from beeai_framework.tools import AnyTool, StringToolOutput, Tool, ToolRunOptions
from pydantic import BaseModel, Field

from aistack_agents.metrics import NODE_SECONDS
from aistack_agents.rag import RagClient, RetrievalError, number_passages

RAG_TOOL = "rag_search"


class RagSearchInput(BaseModel):
    query: str = Field(..., min_length=1, description="What to look up: a question or keywords.")


class RagSearchTool(Tool[RagSearchInput, ToolRunOptions, StringToolOutput]):
    """One instance per agent run: it numbers the passages it returns across calls ([1], [2], ...)
    and keeps them (``sources``) and the retrieval failures (``errors``) for the run's result, so
    the answer's source list comes from the RAG service, never from the model."""

    name = RAG_TOOL
    description = (
        "Searches the lab's knowledge base (the RAG service) and returns numbered passages "
        "[n] with their document ids. Use it for every factual question; cite passages as [n]."
    )

    def __init__(self, rag: RagClient) -> None:
        super().__init__()
        self._rag = rag
        self.sources: list[dict[str, Any]] = []
        self.errors: list[str] = []

    @property
    def input_schema(self) -> type[RagSearchInput]:
        return RagSearchInput

    def _create_emitter(self) -> Emitter:
        return Emitter.root().child(namespace=["tool", "aistack", "rag_search"], creator=self)

    async def _run(
        self, input: RagSearchInput, options: ToolRunOptions | None, context: RunContext
    ) -> StringToolOutput:
        start = time.perf_counter()
        try:
            found = await self._rag.retrieve(input.query)
        except RetrievalError as exc:
            # Reported to the model as the tool's output (and to the user by the agent), not
            # raised: a raised tool error would be retried, and there is nothing to retry.
            self.errors.append(str(exc))
            return StringToolOutput(
                f"Retrieval failed: {exc}. There is no context: tell the user the knowledge "
                "base could not be searched, answer only from general knowledge if at all, "
                "and cite no sources."
            )
        finally:
            NODE_SECONDS.labels("beeai", RAG_TOOL).observe(time.perf_counter() - start)
        if not found:
            return StringToolOutput("The knowledge base has no passage for this query.")
        return StringToolOutput("\n".join(number_passages(found, self.sources)))

    async def clone(self) -> Self:
        # The run's sources live on this instance: a clone inside the run must share them.
        return self


class MCPConnection:
    """The MCP server's tools (beeai-framework's MCPTool over streamable HTTP). The session is
    held by a task of its own, inside ``async with`` blocks: the MCP client's task groups must be
    entered and exited by one task, and a transport failure then surfaces as an exception."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url
        self.api_key = api_key
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self, timeout_s: float = 30.0) -> list[AnyTool]:
        """Connects and lists the tools; raises when the server cannot be reached or listed."""
        ready: asyncio.Future[list[AnyTool]] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold(ready))
        return await asyncio.wait_for(ready, timeout_s)

    async def _hold(self, ready: asyncio.Future[list[AnyTool]]) -> None:
        import httpx
        from beeai_framework.tools.mcp import MCPTool
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        try:
            # MCP's recommended timeouts: 30 s per request, 5 min for a streamed read.
            async with (
                httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=300)) as http,
                streamable_http_client(self.url, http_client=http) as (read, write, _),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                ready.set_result(list(await MCPTool.from_session(session)))
                await self._stop.wait()
        except Exception as exc:  # transport, HTTP or protocol errors alike
            if not ready.done():
                ready.set_exception(RuntimeError(_leaf(exc)))

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)


def _leaf(exc: BaseException) -> str:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
