"""Fixtures for the fine-tuning tests, which run in .venv-finetune (torch, transformers, peft;
see test_in_side_venv.py): a tiny randomly initialised Llama and a byte-level BPE tokenizer,
both built here (nothing is downloaded), and a toy instruction dataset.

The main venv collects only the runner; .venv-finetune collects only the suite."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

SUITE = ["test_dataset.py", "test_register.py", "test_train.py"]
RUNNERS = ["test_in_side_venv.py"]
collect_ignore_glob = RUNNERS if importlib.util.find_spec("aistack_finetune") else SUITE
if importlib.util.find_spec("aistack_finetune"):
    # One thread: a tiny model gains nothing from more, and OpenMP threads spinning on a busy
    # 2-core machine made each step 20x slower. Inherited by the subprocesses of the suite.
    os.environ["OMP_NUM_THREADS"] = "1"

# A toy task with a pattern a tiny model picks up in a few steps.
TOY = [
    {
        "messages": [
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris is the capital of France."},
        ]
    },
    {
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Capital of Italy?"},
            {"role": "assistant", "content": "Rome is the capital of Italy."},
        ]
    },
    {"prompt": "Capital of Spain? ", "completion": "Madrid is the capital of Spain."},
    {"prompt": "Capital of Germany? ", "completion": "Berlin is the capital of Germany."},
    {
        "messages": [
            {"role": "user", "content": "Capital of Austria?"},
            {"role": "assistant", "content": "Vienna is the capital of Austria."},
            {"role": "user", "content": "And of Portugal?"},
            {"role": "assistant", "content": "Lisbon is the capital of Portugal."},
        ]
    },
    {"prompt": "Capital of Greece? ", "completion": "Athens is the capital of Greece."},
]


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (hidden size 32) with a 300-token byte-level BPE tokenizer, saved as a
    local model directory, like a base model on a PVC."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    corpus = [json.dumps(r) for r in TOY] * 4
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<pad>", "<s>", "</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    hf_tokenizer.save_pretrained(path)
    config = LlamaConfig(
        vocab_size=len(hf_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.2,
        bos_token_id=hf_tokenizer.bos_token_id,
        eos_token_id=hf_tokenizer.eos_token_id,
        pad_token_id=hf_tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture
def toy_dataset(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "toy.jsonl", TOY)
