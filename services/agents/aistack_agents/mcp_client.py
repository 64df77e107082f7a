"""An MCP server's tools over streamable HTTP, on the ``mcp`` SDK: shared by the crew
(crew/mcp_tools.py wraps them as CrewAI tools) and the query router (OpenAI tool calling).

Each discovery and each call opens and closes its own session inside one task, which is what
the SDK's anyio task groups require (a session kept across tasks fails at teardown).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import Tool

T = TypeVar("T")


class MCPError(RuntimeError):
    """The MCP server could not be reached or refused the request (a readable cause)."""


@dataclass(frozen=True)
class ToolResult:
    text: str
    is_error: bool  # the tool ran and reported an error (isError)


def auth_headers(api_key: str | None) -> dict[str, str] | None:
    return {"Authorization": f"Bearer {api_key}"} if api_key else None


def function_name(tool_name: str) -> str:
    """``mcp_<name>``: a valid OpenAI function / CrewAI tool name that says where it is from."""
    return "mcp_" + re.sub(r"[^A-Za-z0-9_]+", "_", tool_name)


def describe(exc: BaseException) -> str:
    """The innermost causes of an error (the SDK wraps transport errors in ExceptionGroups,
    whose own message says only 'unhandled errors in a TaskGroup')."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(describe(e) for e in exc.exceptions))
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def with_session(
    url: str, headers: dict[str, str] | None, fn: Callable[[ClientSession], Awaitable[T]]
) -> T:
    """``fn`` on an initialised session; any transport or protocol failure becomes MCPError."""
    try:
        # The session needs the transport's streams: contexts entered in order, in one task.
        # The SDK's own client factory: its timeouts suit streams a server holds open.
        async with (
            create_mcp_http_client(headers=headers) as http,
            streamable_http_client(url, http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await fn(session)
    except Exception as exc:  # httpx, anyio and McpError alike, often inside ExceptionGroups
        raise MCPError(f"MCP server at {url}: {describe(exc)}") from exc


async def list_tools(url: str, api_key: str | None) -> list[Tool]:
    listed = await with_session(url, auth_headers(api_key), lambda s: s.list_tools())
    return list(listed.tools)


async def call_tool(
    url: str, headers: dict[str, str] | None, name: str, arguments: dict[str, Any]
) -> ToolResult:
    """One call; raises MCPError when the server cannot be reached."""
    result = await with_session(url, headers, lambda s: s.call_tool(name, arguments))
    text = "\n".join(str(getattr(c, "text", "")) for c in result.content).strip()
    return ToolResult(text, bool(result.isError))
