#!/usr/bin/env python3
"""Time to first token through the RAG pipeline's OpenAI face vs the same model called directly.

Starts ``guidellm mock-server`` (a vLLM-like model server with a known TTFT) and the RAG
service (``rag-pipeline serve``, embedded Qdrant, the bundled MiniLM, the mock as its LLM),
ingests the sample documents, then runs the project's ``llm_benchmark`` engine twice with the
same questions, streaming, one request at a time:

1. direct: ``POST {mock}/v1/chat/completions`` (model ``mock-llm``);
2. RAG: ``POST {service}/v1/chat/completions`` (model ``rag:samples``): retrieval on the
   question, then the same mock with the numbered passages.

Prints TTFT (mean, p50, p90), ITL and request latency of both, the ratio RAG/direct and the
milliseconds retrieval adds. Figures depend on the machine and its load (the embedder runs on
the CPU): re-run it on a quiet machine before quoting them.

    .venv/bin/python benchmarks/rag_openai.py [--requests 30] [--ttft-ms 100] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from rag_common import machine

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SAMPLES = REPO / "services" / "rag_pipeline" / "samples"
API_KEY = "bench-key"
QUESTIONS = [
    "What is aistack?",
    "How does GPU time-slicing let pods share a GPU?",
    "What does Longhorn provide?",
    "How does retrieval-augmented generation work?",
    "Which storage does the platform use for volumes?",
    "What are the reference architectures?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {API_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=300) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def bench(base_url: str, model: str, args: argparse.Namespace, prompts: str) -> dict[str, Any]:
    """One llm_benchmark run (the engine of aistack.platform.llm_benchmark, in process)."""
    sys.path.insert(0, str(REPO))
    from plugins.module_utils.llm_benchmark.config import BenchmarkConfig
    from plugins.module_utils.llm_benchmark.runner import run_benchmark

    cfg = BenchmarkConfig.from_dict(
        {
            "base_url": base_url,
            "api_key": API_KEY,
            "model": model,
            "endpoint": "chat",
            "stream": True,
            "profile": "concurrent",
            "concurrency": args.concurrency,
            "max_requests": args.requests,
            "prompt_file": prompts,
            "output_tokens": args.output_tokens,
            "warmup": {"requests": 2},
        }
    )
    return run_benchmark(cfg)["metrics"]  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--ttft-ms", type=float, default=100.0, help="the mock model's TTFT")
    ap.add_argument("--itl-ms", type=float, default=10.0)
    ap.add_argument("--output-tokens", type=int, default=32)
    ap.add_argument(
        "--write", action="store_true", help="rewrite this benchmark's section of RESULTS.md"
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rag-openai-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        mock_port, rag_port = free_port(), free_port()
        guidellm = shutil.which("guidellm") or str(BIN / "guidellm")
        procs.append(
            subprocess.Popen(
                [
                    guidellm,
                    "mock-server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mock_port),
                    "--model",
                    "mock-llm",
                    "--ttft-ms",
                    str(args.ttft_ms),
                    "--itl-ms",
                    str(args.itl_ms),
                    "--output-tokens",
                    str(args.output_tokens),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        mock = f"http://127.0.0.1:{mock_port}"
        wait_http(f"{mock}/health", procs[-1], 60)
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(REPO / "services" / "rag_pipeline"),
            "QDRANT_PATH": str(tmp / "qdrant"),
            "LLM_URL": f"{mock}/v1",
            "LLM_MODEL": "mock-llm",
            "API_KEY": API_KEY,
            "LOG_LEVEL": "WARNING",
        }
        with open(tmp / "service.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [str(BIN / "rag-pipeline"), "serve", "--port", str(rag_port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        rag = f"http://127.0.0.1:{rag_port}"
        wait_http(f"{rag}/health", procs[-1], 120)
        docs = [
            {"document_id": p.name, "text": p.read_text(encoding="utf-8")}
            for p in sorted(SAMPLES.glob("*.md"))
        ]
        post(f"{rag}/ingest/batch", {"documents": docs, "collection": "samples"})
        prompts = tmp / "questions.jsonl"
        rows = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.requests + 2)]
        prompts.write_text("".join(json.dumps({"prompt": q}) + "\n" for q in rows))

        direct = bench(f"{mock}/v1", "mock-llm", args, str(prompts))
        via_rag = bench(f"{rag}/v1", "rag:samples", args, str(prompts))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    def row(name: str, m: dict[str, Any]) -> str:
        t, itl, lat = m["ttft_ms"], m["itl_ms"], m["latency_ms"]
        return (
            f"| {name} | {t['mean']:.1f} | {t['p50']:.1f} | {t['p90']:.1f} | {itl['mean']:.2f} "
            f"| {lat['mean']:.1f} | {m['successful']} | {m['errored'] + m['incomplete']} |"
        )

    ratio = via_rag["ttft_ms"]["mean"] / direct["ttft_ms"]["mean"]
    added = via_rag["ttft_ms"]["mean"] - direct["ttft_ms"]["mean"]
    lines = [
        f"TTFT through the RAG OpenAI face vs direct (mock TTFT {args.ttft_ms:g} ms, ITL "
        f"{args.itl_ms:g} ms, {args.output_tokens} tokens, {args.requests} requests, "
        f"concurrency {args.concurrency}, {os.cpu_count()} CPUs)",
        "",
        "| path | TTFT mean ms | TTFT p50 | TTFT p90 | ITL mean ms | latency mean ms | ok "
        "| failed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        row("direct (mock-llm)", direct),
        row("RAG (rag:samples)", via_rag),
        "",
        f"TTFT ratio RAG/direct: {ratio:.2f} (retrieval adds {added:.1f} ms to the first token)",
    ]
    print("\n".join(lines))
    if args.write:
        write_section(lines)
    return 0


def write_section(lines: list[str]) -> None:
    """Rewrite this benchmark's section of RESULTS.md (appended the first time)."""
    path = REPO / "benchmarks" / "RESULTS.md"
    text = path.read_text()
    stamp = f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}."
    body = "\n".join(
        [
            "## RAG pipeline as an OpenAI model (`benchmarks/rag_openai.py`)",
            "",
            "The project's `llm_benchmark` engine, streaming, one request at a time, against",
            "`guidellm mock-server` directly and through the RAG service's",
            "`/v1/chat/completions` (model `rag:samples`: retrieval on the question, then the",
            "same mock with the numbered passages). The difference is what retrieval (query",
            "embedding on the CPU, hybrid search) adds before the first token.",
            "",
            *lines,
            "",
            stamp,
        ]
    )
    section = f"<!-- BEGIN rag_openai -->\n{body}\n<!-- END rag_openai -->"
    if "<!-- BEGIN rag_openai -->" in text:
        text = re.sub(
            r"<!-- BEGIN rag_openai -->.*?<!-- END rag_openai -->",
            lambda _: section,
            text,
            flags=re.S,
        )
    else:
        text = text.replace("<!-- END rag_long -->", "<!-- END rag_long -->\n\n" + section, 1)
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
