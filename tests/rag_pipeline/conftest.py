"""Fixtures with real parts: embedded Qdrant, the bundled MiniLM, pgserver, guidellm mock-server,
and infinity-emb (own venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_pipeline.embeddings import LocalEmbedder
from rag_pipeline.main import create_app
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings
from rag_pipeline.stores import make_store
from tests.servers import free_port, serving, uvicorn_thread

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread."""
    with uvicorn_thread(app, access_log=False) as url:
        yield url


# embedder: the session's bundled MiniLM, tests/conftest.py (shared with document_ingest).


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
    argv = [exe, "mock-server", "--host", "127.0.0.1", "--port", str(port), "--model", "mock-llm"]
    argv += ["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "16"]
    argv += ["--request-latency", "0.01"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with serving(argv, port, "/health", **quiet) as url:
        yield f"{url}/v1"


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
    argv = [str(exe), "v2", "--model-id", bundled_model_path(), "--engine", "torch",
            "--device", "cpu", "--served-model-name", "minilm", "--url-prefix", "/v1",
            "--host", "127.0.0.1", "--port", str(port), "--no-model-warmup"]  # fmt: skip
    with open(log_path, "wb") as log:  # read it when the server does not come up
        out = {"stdout": log, "stderr": subprocess.STDOUT, "env": env}
        with serving(argv, port, "/health", timeout=180, **out) as url:
            yield f"{url}/v1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: slow but part of the default run (make test)")
