"""The reviewer's structured verdict and its parsing (no CrewAI import: testable alone)."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field, ValidationError

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class Verdict(BaseModel):
    """score 0-100 (None only in the documented default), issues found, approved or not."""

    score: int | None = Field(None, ge=0, le=100)
    issues: list[str] = Field(default_factory=list)
    approved: bool


# Documented default when the reviewer's reply stays unparseable after the stricter retry:
# not approved, no score (an unreviewed report is not an approved one), and the issue says why.
DEFAULT_VERDICT = Verdict(
    score=None,
    issues=["the reviewer's verdict could not be parsed: the report was not reviewed"],
    approved=False,
)


def parse_verdict(text: str) -> Verdict | None:
    """The JSON verdict in a reply (also inside a code fence or after prose); None when there
    is none or it does not fit the schema (e.g. a score of 120, approved missing)."""
    match = _OBJECT.search(text)
    if not match:
        return None
    try:
        obj: Any = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or isinstance(obj.get("score"), bool):
        return None
    if obj.get("score") is None or not isinstance(obj.get("approved"), bool):
        return None  # a real verdict has both; None is reserved for the default
    issues = obj.get("issues", [])
    if isinstance(issues, str):
        issues = [issues] if issues.strip() else []
    if not isinstance(issues, list):
        return None
    try:
        return Verdict(
            score=obj["score"], issues=[str(i) for i in issues], approved=obj["approved"]
        )
    except ValidationError:
        return None
