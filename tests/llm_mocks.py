"""Real ``guidellm mock-server`` processes on loopback, the OpenAI-compatible LLM of the
llm_benchmark tests and of the AWX runner's benchmark jobs (tests/conftest.py: llm_mocks)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port, wait_http

BIN = Path(sys.executable).parent  # guidellm of this venv, as tests/conftest.py BIN


@dataclass
class MockServer:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def _start(args: list[str], log: Path) -> MockServer:
    port = free_port()
    fh = open(log, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [str(BIN / "guidellm"), "mock-server", "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    fh.close()
    return MockServer(f"http://127.0.0.1:{port}", port, proc, log)


def _wait(server: MockServer, timeout: float = 60) -> None:
    try:
        wait_http(server.url + "/health", server.proc, timeout)
    except RuntimeError as exc:
        raise RuntimeError(f"mock server: {exc}: {server.log.read_text()[-2000:]}") from exc


def _stop(server: MockServer) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)


MOCKS = {
    # known timing in -> measured timing out
    "timed": ["--ttft-ms", "60", "--itl-ms", "8", "--output-tokens", "24"],
    # as fast as it goes
    "fast": ["--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "8"],
    # the 12 first generation requests succeed, every later one gets HTTP 500
    "failing": [
        "--ttft-ms",
        "30",
        "--itl-ms",
        "3",
        "--output-tokens",
        "10",
        "--fail-after-requests",
        "12",
    ],
}


@contextlib.contextmanager
def running_mocks(logs: Path) -> Iterator[dict[str, MockServer]]:
    """Every mock of MOCKS, started in parallel, for the ``with`` block (logs in ``logs``)."""
    servers = {name: _start(args, logs / f"{name}.log") for name, args in MOCKS.items()}
    try:
        for s in servers.values():
            _wait(s)
        yield servers
    finally:
        for s in servers.values():
            _stop(s)
