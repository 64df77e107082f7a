"""Examples -> token ids and labels, the loss only on what the model should learn to write: the
assistant messages (chat) or the completion (prompt/completion). Everything else gets the label
-100, which the causal LM loss ignores.

Chat examples use the tokenizer's own chat template when it has one (the format the model is
served with), rendered turn by turn so that each assistant message's tokens are known; without
one, a plain "### Role:" layout (documented in the README). Prompt/completion examples are the
prompt text followed by the completion, as written in the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aistack_finetune.dataset import Example, Message

IGNORE = -100


class EncodeError(ValueError):
    """The tokenizer cannot encode an example the way training needs it."""


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    line: int

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def _header(role: str) -> str:
    return f"### {role.capitalize()}:\n"


def builtin_segments(messages: tuple[Message, ...], eos: str) -> list[tuple[str, bool]]:
    """The plain layout for tokenizers without a chat template: (text, trained) segments."""
    segments: list[tuple[str, bool]] = []
    for index, message in enumerate(messages):
        last = index == len(messages) - 1
        if message.role == "assistant":
            segments.append((_header("assistant"), False))
            segments.append((message.content + eos, True))
            if not last:
                segments.append(("\n\n", False))
        else:
            segments.append((_header(message.role) + message.content + "\n\n", False))
    return segments


def template_segments(messages: tuple[Message, ...], tokenizer: Any) -> list[tuple[str, bool]]:
    """Segments from the tokenizer's chat template: the conversation up to each assistant
    message (with the generation prompt) is not trained, the assistant's turn is. Needs a
    template whose rendering of a conversation starts with its rendering of any prefix."""
    as_dicts = [{"role": m.role, "content": m.content} for m in messages]
    segments: list[tuple[str, bool]] = []
    done = ""
    for index, message in enumerate(messages):
        if message.role != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(
            as_dicts[:index], tokenize=False, add_generation_prompt=True
        )
        full = tokenizer.apply_chat_template(as_dicts[: index + 1], tokenize=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise EncodeError(
                "the tokenizer's chat template renders a conversation differently from its "
                "prefixes, so the assistant tokens cannot be told apart; use the "
                "prompt/completion format or a tokenizer without a chat template"
            )
        segments.append((prompt[len(done) :], False))
        segments.append((full[len(prompt) :], True))
        done = full
    return segments


def encode_example(example: Example, tokenizer: Any, max_seq_len: int) -> Encoded | None:
    """Token ids and labels of one example, cut to ``max_seq_len``; None when nothing trained
    is left after the cut (the prompt alone fills the window)."""
    eos = tokenizer.eos_token or ""
    prefix: list[int] = []
    if example.messages and getattr(tokenizer, "chat_template", None):
        # The template writes the special tokens (BOS included) itself.
        segments = template_segments(example.messages, tokenizer)
    else:
        if tokenizer.bos_token_id is not None:
            prefix = [int(tokenizer.bos_token_id)]
        if example.messages:
            segments = builtin_segments(example.messages, eos)
        else:
            segments = [(example.prompt, False), (example.completion + eos, True)]
    input_ids = list(prefix)
    labels = [IGNORE] * len(prefix)
    for text, trained in segments:
        if not text:
            continue
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if trained else [IGNORE] * len(ids)
    input_ids, labels = input_ids[:max_seq_len], labels[:max_seq_len]
    if all(label == IGNORE for label in labels):
        return None
    return Encoded(input_ids=input_ids, labels=labels, line=example.line)


def encode_all(
    examples: list[Example], tokenizer: Any, max_seq_len: int
) -> tuple[list[Encoded], list[int]]:
    """(encoded examples, lines skipped because the prompt fills max_seq_len)."""
    encoded: list[Encoded] = []
    skipped: list[int] = []
    for example in examples:
        item = encode_example(example, tokenizer, max_seq_len)
        if item is None:
            skipped.append(example.line)
        else:
            encoded.append(item)
    return encoded, skipped
