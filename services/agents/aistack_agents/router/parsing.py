"""Parsing the LLM's structured replies; None means unparseable (the graph retries/defaults)."""

from __future__ import annotations

import json
import re
from typing import Any

from aistack_agents.router.state import CLASSIFICATIONS, ROUTES, Classification, Route

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in a reply, also inside a code fence or after some prose."""
    match = _OBJECT.search(text)
    if not match:
        return None
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def parse_classification(text: str) -> tuple[Classification, Route] | None:
    obj = _json_object(text)
    if obj is None:
        return None
    label = str(obj.get("classification", "")).strip().lower()
    route = str(obj.get("route", "")).strip().lower()
    if label not in CLASSIFICATIONS or route not in ROUTES:
        return None
    return label, route  # type: ignore[return-value]


def parse_score(text: str) -> tuple[int, str] | None:
    """{"score": 0-100, "reason": "..."}, or a bare integer 0-100 as the whole reply."""
    obj = _json_object(text)
    if obj is not None:
        raw, reason = obj.get("score"), str(obj.get("reason", ""))
    elif re.fullmatch(r"\s*\d{1,3}\s*", text):
        raw, reason = text.strip(), ""
    else:
        return None
    if isinstance(raw, bool):
        return None
    try:
        score = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not score.is_integer() or not 0 <= score <= 100:
        return None
    return int(score), reason
