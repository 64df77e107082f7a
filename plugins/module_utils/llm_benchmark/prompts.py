# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Request bodies: seeded synthetic prompts or a prompt dataset file (JSONL / text)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

__all__ = ["PromptSource", "load_prompt_file", "synthetic_prompt"]

# Short, common English words: each is one token for BPE tokenizers used by Llama, Mistral,
# Qwen and GPT models, so ``n`` words make a prompt of about ``n`` tokens (plus the template).
_WORDS_TEXT = (
    "the of and to in is for on that with as it at by from this be are was or an not "
    "have you all can one has but more will new we they time data model system use first "
    "when year work page also two each any make most like over some than these way only "
    "out what where after back many such high other may well last most very just how "
    "same good long part small both city world life case state group place point line "
    "side light water power order level house form end name game open plan road test "
    "body fact book price sound table paper river stone music field garden market window "
    "letter summer winter"
)
_WORDS = tuple(_WORDS_TEXT.split())


def synthetic_prompt(rng: random.Random, tokens: int, index: int) -> str:
    """About ``tokens`` tokens of text; a unique numeric prefix defeats prefix caching."""
    words = max(int(tokens) - 3, 1)
    return f"{index} " + " ".join(rng.choices(_WORDS, k=words))


def load_prompt_file(path: str) -> list[dict[str, Any]]:
    """Read a dataset: JSONL/JSON rows with ``prompt``/``text``/``messages`` or plain text lines.

    Each row may carry ``output_tokens`` (or ``max_tokens``) to override the per-request limit.
    """
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read prompt_file {path}: {exc.strerror or exc}") from exc
    rows: list[dict[str, Any]] = []
    if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        items: list[Any]
        if p.suffix.lower() == ".json":
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"prompt_file {path} is not valid JSON: {exc}") from exc
            items = data if isinstance(data, list) else [data]
        else:
            items = []
            for n, line in enumerate(raw.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f"prompt_file {path} line {n}: invalid JSON: {exc}") from exc
        for n, item in enumerate(items, 1):
            rows.append(_row(item, f"{path} row {n}"))
    else:
        rows = [{"prompt": line.strip()} for line in raw.splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"prompt_file {path} contains no prompts")
    return rows


def _row(item: Any, where: str) -> dict[str, Any]:
    if isinstance(item, str):
        return {"prompt": item}
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object or a string")
    row: dict[str, Any] = {}
    if isinstance(item.get("messages"), list):
        row["messages"] = item["messages"]
    else:
        for key in ("prompt", "text", "input", "question"):
            if isinstance(item.get(key), str):
                row["prompt"] = item[key]
                break
        else:
            raise ValueError(f"{where}: needs 'prompt', 'text', 'input' or 'messages'")
    for key in ("output_tokens", "max_tokens"):
        if isinstance(item.get(key), int) and item[key] > 0:
            row["output_tokens"] = item[key]
            break
    return row


class PromptSource:
    """Builds the full, encoded HTTP request (head + body) for request number ``index``."""

    def __init__(
        self,
        head: bytes,
        model: str,
        endpoint: str,
        stream: bool,
        prompt_tokens: int,
        output_tokens: int | None,
        seed: int,
        rows: list[dict[str, Any]] | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.head = head
        self.model = model
        self.chat = endpoint == "chat"
        self.stream = stream
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.rows = rows
        self.extra = dict(extra_body or {})
        self.rng = random.Random(seed)
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def body(self, index: int) -> dict[str, Any]:
        out_tokens = self.output_tokens
        if self.rows is not None:
            row = self.rows[index % len(self.rows)]
            out_tokens = row.get("output_tokens", out_tokens)
            messages = row.get("messages")
            prompt = row.get("prompt")
            if messages is None and prompt is not None and self.chat:
                messages = [{"role": "user", "content": prompt}]
            if prompt is None and not self.chat:
                prompt = "\n".join(str(m.get("content", "")) for m in messages or ())
        else:
            prompt = synthetic_prompt(self.rng, self.prompt_tokens, index)
            messages = [{"role": "user", "content": prompt}]
        body: dict[str, Any] = {"model": self.model}
        if self.chat:
            body["messages"] = messages
        else:
            body["prompt"] = prompt
        if out_tokens:
            body["max_tokens"] = out_tokens
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if self.extra:
            body.update(self.extra)
        return body

    def payload(self, index: int) -> bytes:
        data = self._dumps(self.body(index)).encode("utf-8")
        return b"%s%d\r\n\r\n%s" % (self.head, len(data), data)
