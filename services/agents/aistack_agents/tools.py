"""OpenAI tool (function) definitions, shared by the router (an MCP server's tools) and the
benchmarks' agent loops (TravelPlanner's and Vending-Bench's tools)."""

from __future__ import annotations

from typing import Any


def function_tool(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI function tool whose parameters are a JSON schema (an object schema)."""
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def openai_function(
    name: str, description: str, /, **params: str | tuple[str, str]
) -> dict[str, Any]:
    """A function tool whose parameters are all required: each is a description (a string
    parameter) or a (JSON type, description) pair. Positional-only, so a parameter may be called
    ``name`` or ``description``."""
    properties = {}
    for param, spec in params.items():
        kind, text = ("string", spec) if isinstance(spec, str) else spec
        properties[param] = {"type": kind, "description": text}
    schema = {"type": "object", "properties": properties, "required": list(params)}
    return function_tool(name, description, schema)
