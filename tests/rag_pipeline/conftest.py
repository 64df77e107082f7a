"""Fixtures with real parts: embedded Qdrant, the bundled MiniLM, pgserver, guidellm mock-server,
and infinity-emb (own venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_pipeline.embeddings import LocalEmbedder
from rag_pipeline.main import create_app
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings
from rag_pipeline.stores import make_store
from tests.conftest import free_port, stop, wait_http

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    """The bundled MiniLM, loaded once per session."""
    return LocalEmbedder()


@pytest.fixture
def make_pipeline(embedder: LocalEmbedder) -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def _make(**kwargs: object) -> Pipeline:
        settings = Settings(**kwargs)  # type: ignore[arg-type]
        p = Pipeline(settings, make_store(settings), embedder=embedder)
        made.append(p)
        return p

    yield _make
    for p in made:
        p.close()


@pytest.fixture
def make_client(make_pipeline: Callable[..., Pipeline]) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def _make(**kwargs: object) -> TestClient:
        kwargs.setdefault("api_key", API_KEY)
        c = TestClient(create_app(pipeline=make_pipeline(**kwargs)), headers=AUTH)
        c.__enter__()
        clients.append(c)
        return c

    yield _make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture(scope="session")
def llm_url() -> Iterator[str]:
    """guidellm mock-server as the OpenAI-compatible LLM on a free loopback port."""
    exe = shutil.which("guidellm") or str(Path(sys.executable).parent / "guidellm")
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            "mock-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--model",
            "mock-llm",
            "--ttft-ms",
            "5",
            "--itl-ms",
            "1",
            "--output-tokens",
            "16",
            "--request-latency",
            "0.01",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, 60)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A real PostgreSQL 16 + pgvector from pgserver, one per session."""
    pgserver = pytest.importorskip("pgserver")
    tmp = tempfile.mkdtemp(prefix="rag-pg-")
    server = pgserver.get_server(tmp, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def infinity_url() -> Iterator[str]:
    """infinity-emb serving the bundled MiniLM folder over OpenAI-compatible /v1/embeddings."""
    exe = ROOT / ".venv-infinity" / "bin" / "infinity_emb"
    if not exe.exists():
        pytest.skip("run `make infinity` first (.venv-infinity missing)")
    from rag_pipeline.embeddings import bundled_model_path

    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
        "DO_NOT_TRACK": "1",
    }
    log_path = Path(tempfile.mkdtemp(prefix="infinity-")) / "infinity.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                str(exe),
                "v2",
                "--model-id",
                bundled_model_path(),
                "--engine",
                "torch",
                "--device",
                "cpu",
                "--served-model-name",
                "minilm",
                "--url-prefix",
                "/v1",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-model-warmup",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/health", proc, 180)  # log: log_path
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            stop(proc)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: slow but part of the default run (make test)")
