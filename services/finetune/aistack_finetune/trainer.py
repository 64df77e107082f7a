"""LoRA fine-tuning of a causal LM: a plain PyTorch loop over peft + transformers, with its own
checkpoints so that a killed run (a preempted Job on a shared GPU) continues from the last saved
step with the same data order, optimizer state and random state.

Output directory layout:
  adapter/                 the final LoRA adapter (adapter_model.safetensors, adapter_config.json)
  metrics.json             per-step loss, final loss, tokens, duration, parameters
  checkpoints/step-NNNNNN  the last checkpoints (adapter, optimizer, scheduler, RNG, state)
  mlflow.json              the MLflow run id and the last step logged to it (when tracking)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from aistack_finetune import __version__
from aistack_finetune.dataset import Dataset, load_dataset
from aistack_finetune.encode import IGNORE, Encoded, encode_all
from aistack_finetune.tracking import MlflowTracker, TrackingError

CHECKPOINT = re.compile(r"^step-(\d+)$")
# Settings a resumed run must share with the run it continues (the checkpoint is meaningless
# otherwise); save_steps and the keep count may change.
RESUME_KEYS = (
    "base_model",
    "epochs",
    "max_steps",
    "lr",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "batch_size",
    "max_seq_len",
    "warmup_steps",
    "seed",
)


class TrainError(RuntimeError):
    """A run that cannot start or continue, with the reason and what to do."""


@dataclass
class TrainConfig:
    base_model: str
    dataset: str
    output: str
    epochs: int = 1
    max_steps: int = 0  # 0: epochs * steps per epoch
    lr: float = 2e-4
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    batch_size: int = 4
    max_seq_len: int = 1024
    save_steps: int = 50
    warmup_steps: int = 0
    seed: int = 42
    keep_checkpoints: int = 2
    resume: bool = False
    device: str = ""  # empty: cuda when available, else cpu

    def check(self) -> None:
        problems = []
        for name in ("epochs", "batch_size", "max_seq_len", "save_steps", "lora_r"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_steps", "warmup_steps"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.lora_alpha <= 0:
            problems.append(f"lora_alpha must be > 0, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.target_modules or not all(self.target_modules):
            problems.append("target_modules must name at least one module (or all-linear)")
        if self.keep_checkpoints < 1:
            problems.append(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        if problems:
            raise TrainError("; ".join(problems))


Log = Callable[[str], None]


def _atomic_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _changed(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return [key for key in current if saved.get(key) != current[key]]


def latest_checkpoint(output: Path) -> Path | None:
    """The newest complete checkpoint (a half-written one is a .tmp folder, never renamed)."""
    found = [
        (int(m.group(1)), p)
        for p in (output / "checkpoints").glob("step-*")
        if (m := CHECKPOINT.match(p.name)) and (p / "state.json").is_file()
    ]
    return max(found)[1] if found else None


def resolve_base_model(spec: str) -> str:
    """A local directory (a PVC), or a Hugging Face id (``hf://org/model`` or ``org/model``)
    found in the local cache (HF_HOME; HF_HUB_OFFLINE keeps it from downloading)."""
    if Path(spec).is_dir():
        return spec
    model_id = spec.removeprefix("hf://")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", model_id):
        raise TrainError(f"base model {spec!r}: not a directory and not a Hugging Face id")
    return model_id


def load_base(spec: str, device: torch.device) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_base_model(spec)
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        dtype = (
            torch.bfloat16
            if device.type == "cuda" and torch.cuda.is_bf16_supported()
            else torch.float32
        )
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=offline)
    except OSError as exc:
        where = "directory" if Path(source).is_dir() else "local Hugging Face cache (offline)"
        raise TrainError(f"base model {spec!r}: cannot load it from the {where}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        # Padding is masked (attention mask and labels): any token serves.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer, model.to(device)


def collate(items: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(item.input_ids) for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item.input_ids)
        ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class Trainer:
    def __init__(self, config: TrainConfig, log: Log = print) -> None:
        config.check()
        self.config = config
        self.log = log
        self.output = Path(config.output)
        self.tracker: MlflowTracker | None = None
        self.mlflow_logged = 0
        self._orders: dict[int, list[int]] = {}

    # --- set-up -------------------------------------------------------------------------
    def _fingerprint(self, dataset: Dataset) -> dict[str, Any]:
        settings = {key: getattr(self.config, key) for key in RESUME_KEYS}
        return {**settings, "dataset_sha256": dataset.sha256}

    def _order(self, epoch: int, size: int) -> list[int]:
        """The example order of an epoch: a function of the seed and the epoch only, so a
        resumed run draws the same batches."""
        if epoch not in self._orders:
            generator = torch.Generator().manual_seed(self.config.seed + epoch)
            self._orders = {epoch: torch.randperm(size, generator=generator).tolist()}
        return self._orders[epoch]

    def _start_tracking(self, state: dict[str, Any], params: dict[str, Any]) -> None:
        self.tracker = MlflowTracker.from_env()
        if self.tracker is None:
            return
        sidecar = self.output / "mlflow.json"
        known = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        # A fresh run in a reused folder starts a new MLflow run; a resumed one continues its own.
        run_id = known.get("run_id", "") if state["step"] > 0 else ""
        try:
            self.tracker.start(self.output.name or "finetune", run_id)
            if not run_id:
                self.tracker.log_params(params)
        except TrackingError as exc:
            raise TrainError(f"{exc} (unset MLFLOW_TRACKING_URI to train without it)") from exc
        self.mlflow_logged = int(known.get("logged_step", 0)) if run_id else 0
        _atomic_json(sidecar, {"run_id": self.tracker.run_id, "logged_step": self.mlflow_logged})
        self.log(f"MLflow run {self.tracker.run_id} at {self.tracker.uri}")

    def _flush_tracking(self, history: list[dict[str, Any]], upto: int) -> None:
        """Sends the steps after the last one logged (each step reaches MLflow once, also
        across a resume); a failure mid-run is a warning, the metrics file has everything."""
        if self.tracker is None:
            return
        rows = []
        for entry in history:
            if self.mlflow_logged < entry["step"] <= upto:
                rows += [
                    ("loss", entry["loss"], entry["step"]),
                    ("learning_rate", entry["lr"], entry["step"]),
                    ("tokens", entry["tokens"], entry["step"]),
                ]
        if not rows:
            return
        try:
            self.tracker.log_metrics(rows)
        except TrackingError as exc:
            self.log(f"warning: MLflow logging failed, continuing without it: {exc}")
            self.tracker = None
            return
        self.mlflow_logged = upto
        _atomic_json(
            self.output / "mlflow.json",
            {"run_id": self.tracker.run_id, "logged_step": self.mlflow_logged},
        )

    # --- checkpoints --------------------------------------------------------------------
    def _save_checkpoint(
        self, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]
    ) -> Path:
        root = self.output / "checkpoints"
        final = root / f"step-{state['step']:06d}"
        tmp = root / f".tmp-step-{state['step']:06d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)  # only a complete checkpoint ever carries the step-N name
        kept = sorted(
            (int(m.group(1)), p) for p in root.glob("step-*") if (m := CHECKPOINT.match(p.name))
        )
        for _, old in kept[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def _load_checkpoint(
        self, path: Path, model: Any, optimizer: Any, scheduler: Any
    ) -> dict[str, Any]:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(path / "adapter_model.safetensors"))
        set_peft_model_state_dict(model, weights)
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
        rng = torch.load(path / "rng.pt", weights_only=True)
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        return dict(json.loads((path / "state.json").read_text()))

    # --- the run ------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        config = self.config
        dataset = load_dataset(config.dataset)  # DatasetError before anything heavy happens
        self.log(
            f"dataset {dataset.path}: {len(dataset.examples)} examples "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(dataset.counts.items()))
        )
        fingerprint = self._fingerprint(dataset)
        metrics_path = self.output / "metrics.json"
        checkpoint = latest_checkpoint(self.output)
        if not config.resume and (checkpoint or metrics_path.exists()):
            raise TrainError(
                f"{self.output} holds an earlier run (checkpoints or metrics.json): pass --resume "
                "to continue it, or choose an empty output directory"
            )
        if config.resume and metrics_path.exists():
            done = json.loads(metrics_path.read_text())
            changed = _changed(done.get("fingerprint", {}), fingerprint)
            if changed:
                raise TrainError(
                    f"{self.output} holds a completed run with other settings "
                    f"({', '.join(changed)} changed): choose a new output directory"
                )
            self.log(f"{self.output}: this run already completed; nothing to do")
            return dict(done)
        self.output.mkdir(parents=True, exist_ok=True)

        device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        tokenizer, base = load_base(config.base_model, device)
        encoded, skipped = encode_all(dataset.examples, tokenizer, config.max_seq_len)
        if skipped:
            self.log(
                f"warning: {len(skipped)} example(s) skipped, their prompt fills max_seq_len "
                f"{config.max_seq_len} (lines {', '.join(map(str, skipped[:20]))})"
            )
        if not encoded:
            raise TrainError("no example left to train on after cutting to max_seq_len")
        steps_per_epoch = math.ceil(len(encoded) / config.batch_size)
        total = config.max_steps or config.epochs * steps_per_epoch

        from peft import LoraConfig, get_peft_model

        targets: str | list[str] = (
            "all-linear" if config.target_modules == ["all-linear"] else config.target_modules
        )
        torch.manual_seed(config.seed)  # the LoRA A matrices' initialisation
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
        try:
            model = get_peft_model(base, lora)
        except ValueError as exc:
            raise TrainError(f"LoRA target modules {config.target_modules}: {exc}") from exc
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
        warmup = config.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        state: dict[str, Any] = {
            "step": 0,
            "total_steps": total,
            "history": [],
            "duration_s": 0.0,
            "resumed_from": [],
            "fingerprint": fingerprint,
        }
        if config.resume and checkpoint is not None:
            saved = json.loads((checkpoint / "state.json").read_text())
            changed = _changed(saved.get("fingerprint", {}), fingerprint)
            if changed:
                raise TrainError(
                    f"cannot resume from {checkpoint}: {', '.join(changed)} changed since it was "
                    "saved; use the same settings and dataset, or a new output directory"
                )
            state = self._load_checkpoint(checkpoint, model, optimizer, scheduler)
            state["resumed_from"] = [*state["resumed_from"], state["step"]]
            self.log(f"resuming from {checkpoint} (step {state['step']} of {total})")
        elif config.resume:
            self.log(f"no checkpoint in {self.output}: starting from step 0")

        params = {
            **{k: v for k, v in asdict(config).items() if k not in ("resume", "output")},
            "target_modules": ",".join(config.target_modules),
            "examples": len(encoded),
            "skipped_examples": len(skipped),
            "total_steps": total,
            "trainable_parameters": sum(p.numel() for p in trainable),
            "device": device.type,
        }
        self._start_tracking(state, params)
        self._flush_tracking(state["history"], state["step"])
        self.log(
            f"training {params['trainable_parameters']} LoRA parameters on {device.type}: "
            f"{total} steps, {steps_per_epoch} per epoch, batch {config.batch_size}"
        )
        try:
            self._loop(model, optimizer, scheduler, state, encoded, tokenizer, total)
        except BaseException:
            if self.tracker is not None:
                with contextlib.suppress(TrackingError):
                    self.tracker.finish("KILLED" if state["step"] < total else "FAILED")
            raise
        return self._finish(model, state, dataset, encoded, skipped, params, fingerprint)

    def _loop(
        self,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        state: dict[str, Any],
        encoded: list[Encoded],
        tokenizer: Any,
        total: int,
    ) -> None:
        config = self.config
        device = next(model.parameters()).device
        steps_per_epoch = math.ceil(len(encoded) / config.batch_size)
        trainable = [p for p in model.parameters() if p.requires_grad]
        model.train()
        started = time.monotonic()
        base_duration = float(state["duration_s"])
        first_step = state["step"]
        while state["step"] < total:
            step = state["step"]
            epoch, index = divmod(step, steps_per_epoch)
            order = self._order(epoch, len(encoded))
            items = [encoded[i] for i in order[index * config.batch_size :][: config.batch_size]]
            batch = {k: v.to(device) for k, v in collate(items, tokenizer.pad_token_id).items()}
            loss = model(**batch).loss
            if not torch.isfinite(loss):
                raise TrainError(
                    f"loss is {loss.item()} at step {step + 1}: lower --lr (now {config.lr})"
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] = step + 1
            elapsed = time.monotonic() - started
            state["duration_s"] = base_duration + elapsed
            entry = {
                "step": step + 1,
                "epoch": round((step + 1) / steps_per_epoch, 4),
                "loss": float(loss.item()),
                "lr": float(lr),
                "tokens": int(batch["attention_mask"].sum().item()),
                "trained_tokens": int((batch["labels"] != IGNORE).sum().item()),
            }
            state["history"].append(entry)
            done = state["step"] - first_step
            eta = elapsed / done * (total - state["step"])
            self.log(
                f"step {state['step']}/{total} epoch {entry['epoch']:.2f} "
                f"loss {entry['loss']:.4f} lr {lr:.2e} tokens {entry['tokens']} "
                f"elapsed {state['duration_s']:.1f}s eta {eta:.0f}s"
            )
            if state["step"] % config.save_steps == 0 and state["step"] < total:
                path = self._save_checkpoint(model, optimizer, scheduler, state)
                self.log(f"checkpoint {path}")
                self._flush_tracking(state["history"], state["step"])

    def _finish(
        self,
        model: Any,
        state: dict[str, Any],
        dataset: Dataset,
        encoded: list[Encoded],
        skipped: list[int],
        params: dict[str, Any],
        fingerprint: dict[str, Any],
    ) -> dict[str, Any]:
        import peft
        import transformers

        adapter = self.output / "adapter"
        tmp = self.output / ".tmp-adapter"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        shutil.rmtree(adapter, ignore_errors=True)
        os.replace(tmp, adapter)
        history = state["history"]
        metrics = {
            "status": "completed",
            "base_model": self.config.base_model,
            "adapter_dir": str(adapter),
            "dataset": {
                "path": str(dataset.path),
                "sha256": dataset.sha256,
                "examples": len(encoded),
                "skipped_lines": skipped,
                "formats": dataset.counts,
            },
            "params": params,
            "steps": history,
            "total_steps": state["total_steps"],
            "final_loss": history[-1]["loss"],
            "tokens": sum(e["tokens"] for e in history),
            "trained_tokens": sum(e["trained_tokens"] for e in history),
            "duration_s": round(float(state["duration_s"]), 3),
            "resumed_from": state["resumed_from"],
            "fingerprint": fingerprint,
            "versions": {
                "aistack_finetune": __version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "peft": peft.__version__,
            },
        }
        _atomic_json(self.output / "metrics.json", metrics)
        self._flush_tracking(history, state["step"])
        if self.tracker is not None:
            try:
                self.tracker.log_metrics(
                    [
                        ("final_loss", metrics["final_loss"], state["step"]),
                        ("total_tokens", metrics["tokens"], state["step"]),
                        ("duration_s", metrics["duration_s"], state["step"]),
                    ]
                )
                self.tracker.set_tags({"aistack.adapter_dir": str(adapter)})
                self.tracker.finish("FINISHED")
            except TrackingError as exc:
                self.log(f"warning: MLflow logging failed: {exc}")
        self.log(
            f"done: {state['step']} steps, final loss {metrics['final_loss']:.4f}, "
            f"{metrics['tokens']} tokens, {metrics['duration_s']:.1f}s; adapter in {adapter}"
        )
        return metrics


def train(config: TrainConfig, log: Log = print) -> dict[str, Any]:
    return Trainer(config, log).run()
