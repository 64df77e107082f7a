"""An MCP server's tools as CrewAI tools, on the shared MCP client (aistack_agents.mcp_client).

Not CrewAI's own ``Agent(mcps=[...])``: with the pinned crewai 1.15.30 and mcp 1.30 every call
of its native MCP tool fails at teardown ("Attempted to exit cancel scope in a different task",
reported as "Error during MCP client disconnect"). Here each discovery and each call opens and
closes its session inside one task, which is what the SDK's anyio task groups require.
"""

from __future__ import annotations

import re
from typing import Any

from crewai.tools import BaseTool
from pydantic import BaseModel, Field, create_model

from aistack_agents.mcp_client import auth_headers, call_tool, function_name, list_tools

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _args_model(tool_name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model from the tool's JSON schema (top-level properties; nested types are
    passed through as list/dict, unknown ones as Any)."""
    required = set(schema.get("required", []))
    fields: dict[str, Any] = {}
    for prop, spec in (schema.get("properties") or {}).items():
        kind = _TYPES.get(str(spec.get("type")), Any)
        default = ... if prop in required else spec.get("default")
        annotation = kind if prop in required else kind | None
        fields[prop] = (annotation, Field(default, description=spec.get("description", "")))
    name = "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", tool_name)) + "Args"
    return create_model(name or "McpArgs", **fields)


class McpTool(BaseTool):
    """One MCP tool; a call is one short session (errors come back as text: the model sees
    that the tool failed, and nothing is made up)."""

    url: str
    headers: dict[str, str] | None = None
    tool_name: str

    def _run(self, **kwargs: Any) -> str:
        from aistack_agents.crew.crew import _run_sync

        args = {k: v for k, v in kwargs.items() if v is not None}
        try:
            result = _run_sync(call_tool(self.url, self.headers, self.tool_name, args))
        except Exception as exc:  # transport, protocol or server errors alike
            return f"MCP tool {self.tool_name} failed: {type(exc).__name__}: {exc}"
        if result.is_error:
            return f"MCP tool {self.tool_name} reported an error: {result.text}"
        return result.text


async def discover(url: str, api_key: str | None) -> list[BaseTool]:
    """The server's tools as ``mcp_<name>`` CrewAI tools. Raises when the server cannot be
    reached (the crew records it and runs with the RAG tool alone)."""
    headers = auth_headers(api_key)
    return [
        McpTool(
            name=function_name(tool.name),
            description=tool.description or f"MCP tool {tool.name}",
            args_schema=_args_model(tool.name, tool.inputSchema or {}),
            url=url,
            headers=headers,
            tool_name=tool.name,
        )
        for tool in await list_tools(url, api_key)
    ]
