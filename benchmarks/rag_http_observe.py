#!/usr/bin/env python3
"""What the RAG service's per-request observation and framing cost.

1. Per request: the x-request-id header, the rag_http_* metrics, the JSON log line and the
   body limit (every middleware of create_app). The same app is timed in process (httpx over
   ASGI, no sockets) on GET /health and on a POST /query refused by validation (a body read
   and a 422 answered): as create_app builds it, and with its middleware removed; the
   difference is the observation's cost. Log lines go to /dev/null (formatting is counted).
2. One JSON log line (the request line: five extra fields) with the service's formatter.
3. One server-sent event (a token: ``event`` and a JSON ``data``) framed as the service
   frames it (sse-starlette), and with the one-line f-string it replaced.

Each figure is the best of 5 rounds (the least disturbed by other work on the machine).

  PYTHONPATH=services/rag_pipeline .venv/bin/python benchmarks/rag_http_observe.py [--requests N]

Figures on a shared 2-core machine are noisy: run it several times, and on the same machine
before and after a change to the observation stack (README: "Libraries and what we hand-write").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from typing import Any

import httpx


def build(bare: bool) -> Any:
    from rag_pipeline.main import create_app
    from rag_pipeline.settings import Settings

    # No embedder is reached: /health and a refused /query never embed.
    settings = Settings(embedding_backend="openai", embedding_url="http://127.0.0.1:9/v1")
    app = create_app(settings)
    if bare:
        app.user_middleware.clear()
    return app


async def timed(app: Any, requests: int) -> dict[str, float]:
    transport = httpx.ASGITransport(app=app)
    out: dict[str, float] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name, call in (
            ("GET /health", lambda: client.get("/health")),
            ("POST /query 422", lambda: client.post("/query", json={"query": ""})),
        ):
            for _ in range(50):  # warm-up
                await call()
            rounds = []
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(requests // 5):
                    await call()
                rounds.append((time.perf_counter() - t0) / (requests // 5))
            out[name] = min(rounds) * 1e6  # µs per request
    return out


def best_of(fn: Any, n: int) -> float:
    """µs per call of ``fn``, best of 5 rounds of ``n`` calls."""
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t0) / n)
    return min(rounds) * 1e6


def log_line_us(n: int) -> float:
    from rag_pipeline.logging_setup import JsonFormatter

    formatter = JsonFormatter()
    extra = {"request_id": "0" * 32, "method": "POST", "path": "/query", "status": 200}
    record = logging.makeLogRecord(
        {"name": "rag_pipeline.http", "levelname": "INFO", "msg": "request", **extra}
    )
    record.duration_ms = 12.34
    return best_of(lambda: formatter.format(record), n)


def sse_us(n: int) -> tuple[float, float]:
    from sse_starlette.event import ensure_bytes

    data = {"text": "a token of the answer"}

    def library() -> bytes:
        return ensure_bytes({"event": "token", "data": json.dumps(data)}, "\n")

    def fstring() -> bytes:
        return f"event: token\ndata: {json.dumps(data)}\n\n".encode()

    assert library() == fstring()  # the same bytes on the wire
    return best_of(library, n), best_of(fstring, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        sys.stderr = null  # the JSON log handler binds sys.stderr when it is made
        bare = asyncio.run(timed(build(bare=True), args.requests))
        full = asyncio.run(timed(build(bare=False), args.requests))
    sys.stderr = sys.__stderr__
    print(f"{'request':<18}{'bare µs':>10}{'observed µs':>14}{'cost µs':>10}")
    for name in bare:
        cost = full[name] - bare[name]
        print(f"{name:<18}{bare[name]:>10.0f}{full[name]:>14.0f}{cost:>10.0f}")
    print(f"JSON log line: {log_line_us(20000):.1f} µs")
    library, fstring = sse_us(20000)
    print(f"SSE event: {library:.2f} µs (sse-starlette), {fstring:.2f} µs (f-string)")


if __name__ == "__main__":
    main()
