"""Dataset validation: every bad line is reported with its number and problem, before any
training starts (runs in .venv-finetune)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aistack_finetune.cli import main
from aistack_finetune.dataset import DatasetError, load_dataset
from tests.finetune.conftest import TOY, write_jsonl

GOOD_CHAT = (
    '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}'
)
GOOD_PC = '{"prompt": "2+2=", "completion": "4"}'


def test_both_formats_load(toy_dataset: Path) -> None:
    dataset = load_dataset(toy_dataset)
    assert len(dataset.examples) == len(TOY)
    assert dataset.counts == {"chat": 3, "prompt_completion": 3}
    assert [e.line for e in dataset.examples] == list(range(1, len(TOY) + 1))
    second = dataset.examples[1]
    assert [m.role for m in second.messages] == ["system", "user", "assistant"]
    assert dataset.examples[2].completion == TOY[2]["completion"]
    assert len(dataset.sha256) == 64


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(f"{GOOD_PC}\n\n   \n{GOOD_CHAT}\n")
    dataset = load_dataset(path)
    assert [e.line for e in dataset.examples] == [1, 4]


BAD_LINES = [
    ('{"prompt": "x", "completion": "y"', "bad JSON"),
    ('["a list"]', "expected a JSON object, got list"),
    ('{"text": "hello"}', "missing keys: expected 'messages' (chat) or 'prompt' and 'completion'"),
    ('{"prompt": "only a prompt"}', "missing key 'completion'"),
    ('{"prompt": "p", "completion": "   "}', "completion is empty"),
    ('{"prompt": 3, "completion": "c"}', "prompt must be a string, got int"),
    ('{"messages": []}', "'messages' must be a non-empty list"),
    (
        '{"messages": [{"role": "human", "content": "Hi"},'
        ' {"role": "assistant", "content": "Yo"}]}',
        "messages[0] has role 'human': expected one of system, user, assistant",
    ),
    (
        '{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "Yo"}]}',
        "messages[0].content is empty",
    ),
    ('{"messages": [{"role": "user"}]}', "messages[0] is missing key 'content'"),
    ('{"messages": [{"role": "user", "content": "Hi"}]}', "no assistant message"),
    (
        '{"messages": [{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "?"}]}',
        "must open with a user message",
    ),
    (
        '{"messages": [{"role": "user", "content": "Hi"}, {"role": "system", "content": "S"},'
        ' {"role": "assistant", "content": "Yo"}]}',
        "messages[1]: a system message may only come first",
    ),
    (
        '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],'
        ' "prompt": "p"}',
        "mixes the chat format (messages) with prompt",
    ),
]


@pytest.mark.parametrize(("line", "problem"), BAD_LINES, ids=[p for _, p in BAD_LINES])
def test_bad_line_is_named_with_its_number(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(f"{GOOD_CHAT}\n{GOOD_PC}\n{line}\n{GOOD_PC}\n")
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert len(caught.value.problems) >= 1
    assert {number for number, _ in caught.value.problems} == {3}
    assert problem in caught.value.problems[0][1], caught.value.problems
    assert f"{path}:3: " in str(caught.value)


def test_every_bad_line_is_reported_at_once(tmp_path: Path) -> None:
    lines = [GOOD_PC, "{oops", GOOD_CHAT, '{"prompt": "p"}', b"\xff\xfe".decode("latin-1")]
    path = tmp_path / "d.jsonl"
    path.write_bytes(("\n".join(lines[:4]) + "\n").encode() + b"\xff\xfe\n")
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert [n for n, _ in caught.value.problems] == [2, 4, 5]
    assert "not UTF-8" in caught.value.problems[2][1]


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DatasetError, match="no examples"):
        load_dataset(empty)
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "missing.jsonl")


def test_validate_cli(
    tmp_path: Path, toy_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(toy_dataset)]) == 0
    assert f"{len(TOY)} valid examples (chat 3, prompt_completion 3)" in capsys.readouterr().out
    bad = write_jsonl(tmp_path / "bad.jsonl", [*TOY, {"prompt": "p", "completion": ""}])
    assert main(["validate", str(bad)]) == 1
    assert f"{bad}:{len(TOY) + 1}: completion is empty" in capsys.readouterr().err


def test_train_rejects_a_bad_dataset_before_loading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [*TOY[:2], {"messages": "nope"}])
    out = tmp_path / "out"
    # The base model does not exist: a run that loaded it first would fail with exit code 2.
    code = main(
        [
            "train",
            "--base-model",
            str(tmp_path / "nowhere"),
            "--dataset",
            str(bad),
            "--output",
            str(out),
        ]
    )
    assert code == 1
    assert f"{bad}:3: 'messages' must be a non-empty list" in capsys.readouterr().err
    assert not out.exists()
