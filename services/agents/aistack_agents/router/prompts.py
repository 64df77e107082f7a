"""Prompts of the router's nodes."""

from __future__ import annotations

import json

from aistack_agents.router.state import ContextChunk

CLASSIFY_SYSTEM = (
    "You route questions for an assistant that has a knowledge base of platform documents.\n"
    "Label the question: factual (asks for facts), analytical (asks to compare, explain or "
    "reason), or creative (asks to write or imagine something).\n"
    'Pick the route: "rag" when a good answer needs the knowledge base (facts about the '
    'platform, its components, configuration, operations), "direct" when general knowledge '
    "or creativity is enough.\n"
    'Reply with JSON only: {"classification": "factual|analytical|creative", '
    '"route": "rag|direct"}'
)
CLASSIFY_STRICT = (
    "Your reply could not be parsed. Reply with exactly one JSON object and nothing else, "
    'for example {"classification": "factual", "route": "rag"}. classification is one of '
    "factual, analytical, creative; route is rag or direct."
)

GENERATE_SYSTEM = (
    "You are a precise assistant. When numbered context passages are given, answer from them "
    "and cite each passage you use as [n]; do not cite passages that were not given. When no "
    "context is given, answer from general knowledge and do not invent citations."
)

# Same opening as GENERATE_SYSTEM (the node is the same); offered only with MCP tools.
GENERATE_TOOLS = (
    " You may call the given tools for facts that the passages do not hold. Each tool result "
    "comes back numbered [n] like a passage: cite it as [n]. When a tool fails, say so and "
    "do not guess its output."
)

QUALITY_SYSTEM = (
    "You grade answers. Score from 0 to 100 how well the answer addresses the question, is "
    "correct and, when context passages are given, is supported by them with [n] citations.\n"
    'Reply with JSON only: {"score": <integer 0-100>, "reason": "<one sentence>"}'
)
QUALITY_STRICT = (
    "Your reply could not be parsed. Reply with exactly one JSON object and nothing else, "
    'for example {"score": 72, "reason": "Mostly correct"}. score is an integer from 0 to 100.'
)


def _label(c: ContextChunk) -> str:
    if c["metadata"].get("source") == "mcp":
        return f"MCP tool {c['metadata']['tool']} {json.dumps(c['metadata']['arguments'])}"
    return f"{c['document_id']}#{c['chunk_index']}"


def numbered_context(context: list[ContextChunk]) -> str:
    return "\n\n".join(f"[{i}] ({_label(c)}) {c['text']}" for i, c in enumerate(context, 1))


def generate_user(
    query: str,
    context: list[ContextChunk],
    no_context_reason: str | None,
    previous: tuple[str, int | None, str] | None,
) -> str:
    parts = []
    if context:
        parts.append(f"Context passages:\n{numbered_context(context)}")
    elif no_context_reason:
        parts.append(f"No context passages are available ({no_context_reason}).")
    parts.append(f"Question: {query}")
    if previous:
        answer, score, reason = previous
        parts.append(
            f"A previous answer scored {score}/100 ({reason or 'no reason given'}). "
            f"Write a better answer. Previous answer:\n{answer}"
        )
    return "\n\n".join(parts)


def quality_user(query: str, context: list[ContextChunk], answer: str) -> str:
    ctx = f"Context passages:\n{numbered_context(context)}\n\n" if context else ""
    return f"{ctx}Question: {query}\n\nAnswer:\n{answer}"


def sources_footer(context: list[ContextChunk]) -> str:
    lines = [
        f"[{i}] {_label(c)}"
        if c["metadata"].get("source") == "mcp"
        else f"[{i}] {c['document_id']} (chunk {c['chunk_index']})"
        for i, c in enumerate(context, 1)
    ]
    return "Sources:\n" + "\n".join(lines)
