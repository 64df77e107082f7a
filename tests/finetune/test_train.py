"""LoRA training on CPU with a tiny random Llama built in the test (runs in .venv-finetune):
the loss only on the completion tokens, the loss going down, the adapter changing the model,
resume after a SIGKILL, and MLflow receiving every step once."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from aistack_finetune.cli import main
from aistack_finetune.dataset import load_dataset
from aistack_finetune.encode import IGNORE, encode_example
from aistack_finetune.trainer import TrainConfig, TrainError, latest_checkpoint, train
from tests.conftest import REPO
from tests.finetune.conftest import TOY

FAST = {"lr": 1e-2, "lora_r": 4, "lora_alpha": 8, "batch_size": 2, "max_seq_len": 128}


def config(base: Path, data: Path, out: Path, **extra: Any) -> TrainConfig:
    return TrainConfig(
        base_model=str(base), dataset=str(data), output=str(out), **{**FAST, **extra}
    )


def trained_text(tokenizer: Any, ids: list[int], labels: list[int]) -> str:
    return tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label != IGNORE])


def test_loss_only_on_the_completion_and_assistant_tokens(
    tiny_model: Path, toy_dataset: Path
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    examples = load_dataset(toy_dataset).examples
    # prompt/completion: the completion and the EOS token, nothing of the prompt.
    pc = encode_example(examples[2], tokenizer, 512)
    assert pc is not None and pc.input_ids[0] == tokenizer.bos_token_id
    assert trained_text(tokenizer, pc.input_ids, pc.labels) == TOY[2]["completion"] + "</s>"
    untrained = [i for i, label in zip(pc.input_ids, pc.labels, strict=True) if label == IGNORE]
    assert tokenizer.decode(untrained) == "<s>" + TOY[2]["prompt"]
    # chat without a chat template: both assistant turns, not the user's or the headers.
    chat = encode_example(examples[4], tokenizer, 512)
    assert chat is not None
    assert trained_text(tokenizer, chat.input_ids, chat.labels) == (
        "Vienna is the capital of Austria.</s>Lisbon is the capital of Portugal.</s>"
    )
    assert "### User:\nCapital of Austria?" in tokenizer.decode(chat.input_ids)
    # chat with the tokenizer's own template: the assistant turns as that template writes them.
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% if m.role == 'assistant' %}"
        "</s>{% endif %}{{ '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    templated = encode_example(examples[4], tokenizer, 512)
    assert templated is not None
    assert trained_text(tokenizer, templated.input_ids, templated.labels) == (
        "Vienna is the capital of Austria.</s>\nLisbon is the capital of Portugal.</s>\n"
    )
    assert tokenizer.decode(templated.input_ids).startswith("<|user|>Capital of Austria?\n")
    # cut to max_seq_len: a prompt that fills the window leaves nothing to learn.
    assert encode_example(examples[2], tokenizer, 3) is None


def test_loss_is_finite_and_goes_down(tiny_model: Path, toy_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    logs: list[str] = []
    metrics = train(config(tiny_model, toy_dataset, out, max_steps=12), log=logs.append)
    losses = [s["loss"] for s in metrics["steps"]]
    assert [s["step"] for s in metrics["steps"]] == list(range(1, 13))
    assert all(math.isfinite(loss) for loss in losses)
    # First epoch (3 steps of 2 examples) against the last: the model learned the toy set.
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    # The metrics file is what train() returned, and its totals add up.
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["final_loss"] == losses[-1] == metrics["final_loss"]
    assert saved["tokens"] == sum(s["tokens"] for s in saved["steps"]) > 0
    assert 0 < saved["trained_tokens"] < saved["tokens"]
    assert saved["duration_s"] > 0 and saved["total_steps"] == 12
    assert saved["dataset"]["examples"] == len(TOY)
    assert saved["params"]["lora_r"] == 4
    assert any(line.startswith("step 12/12 ") for line in logs), logs[-3:]
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert (adapter_config["r"], adapter_config["lora_alpha"]) == (4, 8)
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    # A finished run is not overwritten by accident...
    with pytest.raises(TrainError, match="pass --resume"):
        train(config(tiny_model, toy_dataset, out, max_steps=12), log=logs.append)
    # ...and resuming it does nothing.
    again = train(config(tiny_model, toy_dataset, out, max_steps=12, resume=True), log=logs.append)
    assert again["final_loss"] == metrics["final_loss"]
    assert logs[-1].endswith("already completed; nothing to do")
    with pytest.raises(TrainError, match=r"completed run with other settings \(lr changed\)"):
        train(config(tiny_model, toy_dataset, out, max_steps=12, lr=0.1, resume=True), print)


def test_saved_adapter_reloads_and_changes_the_output(
    tiny_model: Path, toy_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    train(
        config(tiny_model, toy_dataset, out, max_steps=6, target_modules=["q_proj", "v_proj"]),
        log=lambda _: None,
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ids = tokenizer("Capital of Spain? ", return_tensors="pt")["input_ids"]
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        before = base(ids).logits
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model), out / "adapter"
    ).eval()
    with torch.no_grad():
        after = tuned(ids).logits
    assert sorted(
        json.loads((out / "adapter" / "adapter_config.json").read_text())["target_modules"]
    ) == ["q_proj", "v_proj"]
    # LoRA's B matrices start at zero: only trained weights change the logits.
    assert (after - before).abs().max().item() > 1e-3
    with torch.no_grad():
        unloaded = tuned.get_base_model()
        with tuned.disable_adapter():
            assert torch.allclose(unloaded(ids).logits, before, atol=1e-6)


def test_resume_after_sigkill_continues_from_the_checkpoint(
    tiny_model: Path, toy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps, save = 40, 2
    args = ["train", "--base-model", str(tiny_model), "--dataset", str(toy_dataset)]
    args += ["--max-steps", str(steps), "--save-steps", str(save), "--lora-dropout", "0.1"]
    args += ["--lr", "1e-2", "--lora-r", "4", "--lora-alpha", "8", "--batch-size", "2"]
    killed = tmp_path / "killed"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aistack_finetune.cli", *args, "--output", str(killed)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not (killed / "checkpoints" / "step-000004").is_dir():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "no checkpoint in 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists(), "the run ended before it was killed"
    checkpoint = latest_checkpoint(killed)
    assert checkpoint is not None
    at = int(checkpoint.name.removeprefix("step-"))
    assert 4 <= at < steps

    assert main([*args, "--output", str(killed), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"(step {at} of {steps})" in printed
    assert f"step {at + 1}/{steps} " in printed and f"step {at}/{steps} " not in printed
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["resumed_from"] == [at]
    assert [s["step"] for s in resumed["steps"]] == list(range(1, steps + 1))
    # The same run uninterrupted: same batches, optimizer and dropout draws, same losses.
    assert main([*args, "--output", str(tmp_path / "straight")]) == 0
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert [s["loss"] for s in resumed["steps"]] == pytest.approx(
        [s["loss"] for s in straight["steps"]], rel=1e-4, abs=1e-5
    )
    # Only the last checkpoints are kept.
    assert len(list((killed / "checkpoints").glob("step-*"))) == 2


def test_resume_refuses_changed_settings(
    tiny_model: Path, toy_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"

    def stop_at_checkpoint(line: str) -> None:
        if line.startswith("checkpoint "):
            raise KeyboardInterrupt  # an interrupted run, right after its first checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(config(tiny_model, toy_dataset, out, max_steps=6, save_steps=2), stop_at_checkpoint)
    with pytest.raises(TrainError, match="pass --resume"):
        train(config(tiny_model, toy_dataset, out, max_steps=6, save_steps=2), print)
    with pytest.raises(TrainError, match="lora_r changed"):
        train(
            config(tiny_model, toy_dataset, out, max_steps=6, lora_r=8, resume=True),
            print,
        )


def mlflow_get(url: str, path: str, **query: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(query)}", timeout=30) as r:
        return json.loads(r.read())


def test_mlflow_receives_params_and_every_step_once(
    tiny_model: Path,
    toy_dataset: Path,
    tmp_path: Path,
    mlflow_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "finetune-test")
    out = tmp_path / "tracked"
    cfg = config(tiny_model, toy_dataset, out, max_steps=6, save_steps=2)

    def stop_after_step_3(line: str) -> None:
        if line.startswith("step 3/"):
            raise KeyboardInterrupt  # interrupted after checkpoint 2, before checkpoint 4

    with pytest.raises(KeyboardInterrupt):
        train(cfg, stop_after_step_3)
    cfg.resume = True
    metrics = train(cfg, log=lambda _: None)

    experiment = mlflow_server.experiment_id("finetune-test")
    assert experiment is not None
    found = mlflow_server._call(
        "POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment]}
    )
    (run,) = found["runs"]  # the resumed run continued its MLflow run
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["lora_r"] == "4" and params["max_steps"] == "6"
    assert params["base_model"] == str(tiny_model)
    history = mlflow_get(
        mlflow_server.url,
        "/api/2.0/mlflow/metrics/get-history",
        run_id=run["info"]["run_id"],
        metric_key="loss",
    )["metrics"]
    logged = sorted((m["step"], m["value"]) for m in history)
    assert [step for step, _ in logged] == [1, 2, 3, 4, 5, 6]
    assert [value for _, value in logged] == pytest.approx([s["loss"] for s in metrics["steps"]])
    latest = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert latest["final_loss"] == pytest.approx(metrics["final_loss"])
