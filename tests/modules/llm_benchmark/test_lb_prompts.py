"""Prompt generation and dataset loading; the encoded HTTP request."""

from __future__ import annotations

import json
import random

import pytest

from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.prompts import (
    PromptSource,
    load_prompt_file,
    synthetic_prompt,
)


def test_synthetic_prompt_length_seed_and_uniqueness():
    a = synthetic_prompt(random.Random(1), 200, 7)
    b = synthetic_prompt(random.Random(1), 200, 7)
    assert a == b
    assert a.startswith("7 ")
    assert 190 <= len(a.split()) <= 200
    c = synthetic_prompt(random.Random(1), 200, 8)
    assert c != a


def _src(**kw):
    args = {
        "head": b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: ",
        "model": "m",
        "endpoint": "chat",
        "stream": True,
        "prompt_tokens": 16,
        "output_tokens": 32,
        "seed": 3,
    }
    args.update(kw)
    return PromptSource(**args)


def test_payload_is_a_valid_http_request():
    raw = _src().payload(5)
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(head.rsplit(b": ", 1)[1])
    assert length == len(body)
    doc = json.loads(body)
    assert doc["model"] == "m" and doc["max_tokens"] == 32
    assert doc["stream"] is True and doc["stream_options"] == {"include_usage": True}
    assert doc["messages"][0]["role"] == "user"
    assert doc["messages"][0]["content"].startswith("5 ")


def test_completions_non_stream_and_extra_body():
    doc = _src(endpoint="completions", stream=False, extra_body={"temperature": 0}).body(1)
    assert "prompt" in doc and "messages" not in doc
    assert "stream" not in doc and doc["temperature"] == 0


def test_prompt_file_jsonl(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(
        json.dumps({"prompt": "hello", "output_tokens": 5})
        + "\n\n"
        + json.dumps({"messages": [{"role": "user", "content": "hi"}]})
        + "\n"
        + json.dumps({"text": "plain"})
        + "\n"
    )
    rows = load_prompt_file(str(f))
    assert rows == [
        {"prompt": "hello", "output_tokens": 5},
        {"messages": [{"role": "user", "content": "hi"}]},
        {"prompt": "plain"},
    ]
    src = _src(rows=rows)
    assert src.body(0)["messages"] == [{"role": "user", "content": "hello"}]
    assert src.body(0)["max_tokens"] == 5
    assert src.body(1)["messages"][0]["content"] == "hi"
    assert src.body(3)["messages"][0]["content"] == "hello"  # cycles
    assert _src(rows=rows, endpoint="completions").body(1)["prompt"] == "hi"


def test_prompt_file_text_and_errors(tmp_path):
    t = tmp_path / "p.txt"
    t.write_text("first\n\n second \n")
    assert load_prompt_file(str(t)) == [{"prompt": "first"}, {"prompt": "second"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a"}\n{oops\n')
    with pytest.raises(ValueError, match="line 2: invalid JSON"):
        load_prompt_file(str(bad))
    nokey = tmp_path / "nokey.jsonl"
    nokey.write_text('{"answer": "a"}\n')
    with pytest.raises(ValueError, match="needs 'prompt'"):
        load_prompt_file(str(nokey))
    with pytest.raises(ValueError, match="cannot read prompt_file"):
        load_prompt_file(str(tmp_path / "missing.jsonl"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no prompts"):
        load_prompt_file(str(empty))
