"""The JSONL instruction dataset: one example per line, in one of two formats, validated whole
before any training starts (a bad line found after an hour of training would waste the hour).

- chat: ``{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}``, at
  least one assistant message; the loss is on the assistant messages only.
- prompt/completion: ``{"prompt": "...", "completion": "..."}``; the loss is on the completion.

Blank lines are skipped. Every problem is reported with its 1-based line number.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("system", "user", "assistant")
# Errors listed in full; past this many the rest are counted (a wrong file would flood the log).
MAX_REPORTED = 50


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Example:
    """One training example: chat messages, or a prompt and its completion."""

    line: int
    messages: tuple[Message, ...] = ()
    prompt: str = ""
    completion: str = ""

    @property
    def kind(self) -> str:
        return "chat" if self.messages else "prompt_completion"


@dataclass
class Dataset:
    path: Path
    examples: list[Example]
    sha256: str
    counts: dict[str, int] = field(default_factory=dict)


class DatasetError(ValueError):
    """The dataset has bad lines; ``problems`` holds (line, message) pairs, every one found."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]) -> None:
        self.path = path
        self.problems = problems
        shown = [f"{path}:{line}: {problem}" for line, problem in problems[:MAX_REPORTED]]
        if len(problems) > MAX_REPORTED:
            shown.append(f"... and {len(problems) - MAX_REPORTED} more problems")
        super().__init__(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(shown))


def _text(value: Any, what: str) -> tuple[str | None, str | None]:
    """(text, None) when ``value`` is a non-blank string, else (None, the problem)."""
    if not isinstance(value, str):
        return None, f"{what} must be a string, got {type(value).__name__}"
    if not value.strip():
        return None, f"{what} is empty"
    return value, None


def parse_record(record: Any, line: int) -> tuple[Example | None, list[str]]:
    """One decoded JSON line -> (an Example, []) or (None, its problems)."""
    if not isinstance(record, dict):
        return None, [f"expected a JSON object, got {type(record).__name__}"]
    if "messages" in record:
        extra = sorted(set(record) & {"prompt", "completion"})
        if extra:
            return None, [f"mixes the chat format (messages) with {', '.join(extra)}"]
        return _parse_chat(record["messages"], line)
    if "prompt" in record or "completion" in record:
        missing = [key for key in ("prompt", "completion") if key not in record]
        if missing:
            return None, [f"missing key {missing[0]!r} (prompt/completion format)"]
        problems = []
        prompt, problem = _text(record["prompt"], "prompt")
        if problem:
            problems.append(problem)
        completion, problem = _text(record["completion"], "completion")
        if problem:
            problems.append(problem)
        if problems or prompt is None or completion is None:
            return None, problems
        return Example(line=line, prompt=prompt, completion=completion), []
    keys = ", ".join(sorted(map(str, record))) or "none"
    return None, [
        f"missing keys: expected 'messages' (chat) or 'prompt' and 'completion', got {keys}"
    ]


def _parse_chat(messages: Any, line: int) -> tuple[Example | None, list[str]]:
    if not isinstance(messages, list) or not messages:
        return None, ["'messages' must be a non-empty list"]
    problems: list[str] = []
    parsed: list[Message] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            problems.append(f"{where} must be an object, got {type(message).__name__}")
            continue
        for key in ("role", "content"):
            if key not in message:
                problems.append(f"{where} is missing key {key!r}")
        if "role" not in message or "content" not in message:
            continue
        role = message["role"]
        if role not in ROLES:
            problems.append(f"{where} has role {role!r}: expected one of {', '.join(ROLES)}")
            continue
        content, problem = _text(message["content"], f"{where}.content")
        if problem or content is None:
            problems.append(str(problem))
            continue
        if role == "system" and index != 0:
            problems.append(f"{where}: a system message may only come first")
            continue
        parsed.append(Message(role, content))
    if problems:
        return None, problems
    roles = [m.role for m in parsed]
    if "assistant" not in roles:
        return None, ["no assistant message: nothing to learn from this example"]
    if "user" not in roles:
        return None, ["no user message before the assistant's"]
    if roles[0] == "assistant" or roles[: 2 if roles[0] == "system" else 1][-1] != "user":
        return None, ["the conversation must open with a user message (after an optional system)"]
    return Example(line=line, messages=tuple(parsed)), []


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        yield from enumerate(handle, start=1)


def load_dataset(path: str | Path) -> Dataset:
    """Reads and validates the whole file; raises DatasetError listing every bad line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, [(0, "no such file")])
    digest = hashlib.sha256()
    examples: list[Example] = []
    problems: list[tuple[int, str]] = []
    for number, raw in iter_lines(path):
        digest.update(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append((number, f"not UTF-8 text (byte {exc.start + 1})"))
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append((number, f"bad JSON: {exc.msg} (column {exc.colno})"))
            continue
        example, found = parse_record(record, number)
        problems += [(number, problem) for problem in found]
        if example is not None:
            examples.append(example)
    if not problems and not examples:
        problems.append((0, "no examples: the file is empty"))
    if problems:
        raise DatasetError(path, problems)
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.kind] = counts.get(example.kind, 0) + 1
    return Dataset(path=path, examples=examples, sha256=digest.hexdigest(), counts=counts)
