"""Shared helpers for the rag_* benchmarks: CISI loading and a service subprocess."""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CISI = Path(os.environ.get("CISI_DIR", ROOT.parent / "shared" / "datasets" / "cisi"))
if not CISI.exists():
    CISI = Path("/work/shared/datasets/cisi")


def _parse(path: Path) -> dict[str, dict[str, str]]:
    records: dict[str, dict[str, str]] = {}
    cur = field = None
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith(".I "):
            cur, field = line.split()[1], None
            records[cur] = {}
            continue
        m = re.match(r"^\.([A-Z])\s*$", line)
        if m and cur is not None:
            field = m.group(1)
            records[cur].setdefault(field, "")
            continue
        if cur is not None and field:
            records[cur][field] += line + "\n"
    return records


def load_cisi() -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """(doc_id -> title + abstract, query_id -> text for judged queries, qrels)."""
    docs = {
        i: (r.get("T", "").strip() + "\n" + r.get("W", "").strip()).strip()
        for i, r in _parse(CISI / "CISI.ALL").items()
    }
    rel: dict[str, set[str]] = {}
    for line in (CISI / "CISI.REL").read_text().splitlines():
        parts = line.split()
        if parts:
            rel.setdefault(parts[0], set()).add(parts[1])
    queries = {q: r.get("W", "").strip() for q, r in _parse(CISI / "CISI.QRY").items() if q in rel}
    return docs, queries, rel


def ndcg_at(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: set[str], k: int = 100) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def service(env: dict[str, str], timeout: float = 120.0) -> Iterator[str]:
    """Run ``rag-pipeline serve`` on a free loopback port; yield its base URL."""
    port = free_port()
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "LOG_LEVEL": "WARNING", **env}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rag_pipeline.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=full_env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=30).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rag-pipeline did not become ready")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def machine() -> str:
    return f"{os.uname().machine}, {os.cpu_count()} cores"
