"""Bounded load run over real loopback HTTP: 32 clients, 2,000 mixed requests, zero errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest

from rag_pipeline.main import create_app
from rag_pipeline.pipeline import Pipeline
from tests.rag_pipeline.conftest import serve

CLIENTS = 32
REQUESTS = 2000
TOPICS = [
    "gpu time slicing",
    "longhorn replicas",
    "qdrant collections",
    "rag citations",
    "benchmark latency",
    "ingress routing",
    "helm release",
    "vector search",
]


@pytest.fixture
def server_url(make_pipeline: Callable[..., Pipeline]) -> Iterator[str]:
    with serve(create_app(pipeline=make_pipeline(log_level="WARNING"))) as url:
        yield url


@pytest.mark.slow
def test_concurrent_mixed_load(server_url: str) -> None:
    seed = [
        {"document_id": f"seed-{i}", "text": f"{t} notes number {i}: {t} in the aistack platform."}
        for i, t in enumerate(TOPICS)
    ]
    httpx.post(
        f"{server_url}/ingest/batch", json={"documents": seed}, timeout=60
    ).raise_for_status()
    statuses: list[int] = []
    errors: list[str] = []

    async def worker(wid: int, client: httpx.AsyncClient, counter: Iterator[int]) -> None:
        for n in counter:
            topic = TOPICS[n % len(TOPICS)]
            try:
                if n % 5 == 0:  # one request in five ingests (some new, some unchanged)
                    r = await client.post(
                        "/ingest",
                        json={"document_id": f"doc-{n % 50}", "text": f"{topic} update {n % 100}"},
                    )
                else:
                    r = await client.post("/query", json={"query": topic, "top_k": 5, "top_n": 3})
                statuses.append(r.status_code)
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
            except httpx.HTTPError as exc:
                errors.append(f"worker {wid}: {exc!r}")

    async def main() -> None:
        counter = iter(range(REQUESTS))
        limits = httpx.Limits(max_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=server_url, timeout=120, limits=limits) as client:
            await asyncio.gather(*(worker(i, client, counter) for i in range(CLIENTS)))

    asyncio.run(main())
    assert errors == []
    assert len(statuses) == REQUESTS
