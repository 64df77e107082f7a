"""aistack-finetune: `train` a LoRA adapter, `validate` a dataset, `register` an adapter with vLLM.

Exit codes: 0 done, 1 a bad dataset, 2 bad settings or a run that cannot start or continue.
"""

from __future__ import annotations

import argparse
import os
import sys

from aistack_finetune import __version__
from aistack_finetune.dataset import DatasetError, load_dataset


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aistack-finetune",
        description="LoRA fine-tuning of a causal LM from a JSONL instruction dataset "
        '(chat {"messages": [...]} or {"prompt": ..., "completion": ...} lines).',
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("validate", help="check a dataset; report every bad line")
    check.add_argument("file")

    train = sub.add_parser("train", help="train a LoRA adapter (resumable)")
    train.add_argument(
        "--base-model",
        required=True,
        help="local model directory (a PVC), or a Hugging Face id in the local cache "
        "(HF_HUB_OFFLINE: nothing is downloaded)",
    )
    train.add_argument("--dataset", required=True, help="JSONL instruction dataset")
    train.add_argument("--output", required=True, help="output directory (adapter, metrics)")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--max-steps", type=int, default=0, help="0: epochs x steps per epoch")
    train.add_argument("--lr", type=float, default=2e-4)
    train.add_argument("--lora-r", type=int, default=8)
    train.add_argument("--lora-alpha", type=int, default=16)
    train.add_argument("--lora-dropout", type=float, default=0.05)
    train.add_argument(
        "--target-modules",
        default="all-linear",
        help="comma-separated module names (q_proj,v_proj) or all-linear",
    )
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--max-seq-len", type=int, default=1024)
    train.add_argument("--save-steps", type=int, default=50, help="checkpoint every N steps")
    train.add_argument("--warmup-steps", type=int, default=0)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--keep-checkpoints", type=int, default=2)
    train.add_argument("--device", default="", help="cuda or cpu (default: cuda if available)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in --output (a fresh start when there is none)",
    )
    reg = sub.add_parser("register", help="load a trained adapter into a vLLM server (LoRA)")
    reg.add_argument("--vllm-url", required=True, help="OpenAI base URL of vLLM, ending in /v1")
    reg.add_argument("--name", required=True, help="model name of the adapter in vLLM")
    reg.add_argument("--path", required=True, help="the adapter directory as vLLM sees it")
    reg.add_argument(
        "--adapter-dir", default="", help="the same directory as seen here: checked to exist first"
    )
    reg.add_argument("--wait", type=float, default=600, help="seconds to wait for the server")
    return parser


def _register(args: argparse.Namespace) -> int:
    from aistack_finetune.register import RegisterError, register_vllm

    if args.adapter_dir and not os.path.isfile(
        os.path.join(args.adapter_dir, "adapter_config.json")
    ):
        print(f"error: no trained adapter in {args.adapter_dir}", file=sys.stderr)
        return 2
    try:
        register_vllm(
            args.vllm_url,
            args.name,
            args.path,
            api_key=os.environ.get("VLLM_API_KEY", ""),
            wait_s=args.wait,
            log=lambda line: print(line, flush=True),
        )
    except RegisterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _validate(path: str) -> int:
    try:
        dataset = load_dataset(path)
    except DatasetError as exc:
        print(exc, file=sys.stderr)
        return 1
    formats = ", ".join(f"{kind} {n}" for kind, n in sorted(dataset.counts.items()))
    print(f"{path}: {len(dataset.examples)} valid examples ({formats}); sha256 {dataset.sha256}")
    return 0


def _train(args: argparse.Namespace) -> int:
    # Offline by default: the base model comes from a volume or the local cache.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from aistack_finetune.trainer import TrainConfig, TrainError, train

    def log(line: str) -> None:
        print(line, flush=True)

    config = TrainConfig(
        base_model=args.base_model,
        dataset=args.dataset,
        output=args.output,
        epochs=args.epochs,
        max_steps=args.max_steps,
        lr=args.lr,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=[m.strip() for m in args.target_modules.split(",") if m.strip()],
        batch_size=args.batch_size,
        max_seq_len=args.max_seq_len,
        save_steps=args.save_steps,
        warmup_steps=args.warmup_steps,
        seed=args.seed,
        keep_checkpoints=args.keep_checkpoints,
        resume=args.resume,
        device=args.device,
    )
    try:
        train(config, log=log)
    except DatasetError as exc:
        print(exc, file=sys.stderr)
        return 1
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args.file)
    if args.command == "register":
        return _register(args)
    return _train(args)


if __name__ == "__main__":
    sys.exit(main())
