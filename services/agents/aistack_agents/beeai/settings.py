"""The BeeAI agent's settings: the shared ones plus its MCP server and loop bound."""

from __future__ import annotations

from pydantic import Field

from aistack_agents.settings import Settings


class BeeAISettings(Settings):
    # MCP server (streamable HTTP, e.g. the lab's MCP gateway .../mcp): its tools are offered to
    # the agent next to the RAG tool. None: RAG only.
    mcp_url: str | None = None
    mcp_api_key: str | None = None
    # Upper bound on the agent's reasoning/tool iterations per message.
    beeai_max_iterations: int = Field(8, ge=2, le=50)
