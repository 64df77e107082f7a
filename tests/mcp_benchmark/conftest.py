"""Fixtures for the benchmark MCP server's tests, which run in .venv-mcp (see
test_in_mcp_venv.py): the real RAG service (main .venv, embedded Qdrant, bundled MiniLM, an
API key), a real guidellm mock-server (main .venv, it logs every request it receives) and the
MCP server itself as a uvicorn subprocess on loopback. The three start side by side (the RAG
service loading its model is the slow one) and are waited for together."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, stop, wait_http

REPO = Path(__file__).resolve().parents[2]

# .venv-mcp collects the suite only; the main venv collects only the runner.
SUITE = ["test_mcp_server.py"]
RUNNERS = ["test_in_mcp_venv.py"]
IN_MCP_VENV = importlib.util.find_spec("aistack_mcp_benchmark") is not None
collect_ignore_glob = RUNNERS if IN_MCP_VENV else SUITE

TOKEN = "mcp-test-token"
RAG_KEY = "rag-test-key"


@dataclass
class Process:
    """A server the tests started: its URL, the URL that answers once it is ready, its log."""

    url: str
    ready: str
    log: Path
    proc: subprocess.Popen[bytes]

    def wait(self, timeout: float) -> None:
        try:
            wait_http(self.ready, self.proc, timeout)
        except RuntimeError as exc:
            stop(self.proc)
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{exc}\n{self.log}:\n{tail}") from None

    def requests_received(self) -> int:
        """guidellm mock-server (--log-request-received): generation requests so far."""
        text = self.log.read_text(errors="replace")
        return sum("/chat/completions" in line for line in text.splitlines())


def spawn(cmd: list[str], env: dict[str, str], log: Path, url: str, ready: str) -> Process:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    return Process(url, ready, log, proc)


def main_venv_exe(name: str) -> Path:
    exe = REPO / ".venv" / "bin" / name
    if not exe.exists():
        pytest.skip(f"the main .venv (make venv) is needed to run {name}")
    return exe


@pytest.fixture(scope="session")
def rag_started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """The real RAG service (main .venv, this checkout's code) with embedded Qdrant on disk,
    requiring an API key (the MCP server must send RAG_API_KEY). Not waited for here."""
    exe = main_venv_exe("rag-pipeline")
    tmp = tmp_path_factory.mktemp("rag")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "services" / "rag_pipeline"),
        "QDRANT_PATH": str(tmp / "qdrant"),
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "WARNING",
        "API_KEY": RAG_KEY,
    }
    for var in ("LLM_URL", "LOCALAI_URL", "VECTOR_STORE", "QDRANT_URL"):
        env.pop(var, None)
    url = f"http://127.0.0.1:{port}"
    cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
    rag = spawn(cmd, env, tmp / "rag.log", url, f"{url}/ready")
    yield rag
    stop(rag.proc)


@pytest.fixture(scope="session")
def mock_started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """guidellm mock-server: ~40 ms per streamed answer of 16 tokens. Not waited for here."""
    exe = main_venv_exe("guidellm")
    tmp = tmp_path_factory.mktemp("mock-llm")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = ["--model", "mock-llm", "--ttft-ms", "20", "--itl-ms", "1", "--output-tokens", "16"]
    cmd = [str(exe), "mock-server", "--host", "127.0.0.1", "--port", str(port), *args]
    url = f"http://127.0.0.1:{port}"
    mock = spawn(
        [*cmd, "--log-request-received"], env, tmp / "mock.log", f"{url}/v1", f"{url}/health"
    )
    yield mock
    stop(mock.proc)


def spawn_mcp_server(tmp: Path, env: dict[str, str], *args: str) -> Process:
    """``aistack-mcp-benchmark serve`` from this venv, the engine from this checkout
    (plugins/module_utils on PYTHONPATH; the image installs it as the package llm_benchmark).
    Its RESULTS_DIR is ``tmp/results``."""
    exe = Path(sys.executable).parent / "aistack-mcp-benchmark"
    port = free_port()
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MCP_AUTH_TOKEN")}
    full.update(PYTHONPATH=str(REPO / "plugins" / "module_utils"), RESULTS_DIR=str(tmp / "results"))
    full.update(env)
    url = f"http://127.0.0.1:{port}"
    cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    return spawn(cmd, full, tmp / "server.log", url, f"{url}/healthz")


@dataclass
class Stack:
    mcp: Process  # .url: http://127.0.0.1:PORT (the MCP endpoint is .url + "/mcp")
    results: Path  # its RESULTS_DIR
    rag: Process
    llm: Process

    @property
    def mcp_url(self) -> str:
        return f"{self.mcp.url}/mcp"


@pytest.fixture(scope="session")
def stack(
    rag_started: Process, mock_started: Process, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The server as deployed: a bearer token, the RAG service with its key, the mock LLM."""
    tmp = tmp_path_factory.mktemp("mcp")
    env = {
        "MCP_AUTH_TOKEN": TOKEN,
        "RAG_URL": rag_started.url,
        "RAG_API_KEY": RAG_KEY,
        "LLM_BASE_URL": mock_started.url,
    }
    server = spawn_mcp_server(tmp, env)
    try:
        server.wait(60)
        mock_started.wait(60)
        rag_started.wait(180)  # loads MiniLM: the slow one
        yield Stack(server, tmp / "results", rag_started, mock_started)
    finally:
        stop(server.proc)
