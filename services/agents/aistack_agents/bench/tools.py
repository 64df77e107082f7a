"""OpenAI tool (function) definitions of the benchmarks' agent loops."""

from __future__ import annotations

from typing import Any


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
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(params)},
        },
    }
