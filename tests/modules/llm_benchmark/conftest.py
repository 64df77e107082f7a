"""Fixtures for the llm_benchmark tests: real ``guidellm mock-server`` processes on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The shared helpers also put collections/ on sys.path for the ansible_collections imports.
from tests.conftest import BIN, REPO, free_port


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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"mock server died: {server.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(server.url + "/health", timeout=1).read()
            return
        time.sleep(0.1)
    raise RuntimeError(f"mock server did not start: {server.log.read_text()[-2000:]}")


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


@pytest.fixture(scope="session")
def mocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, MockServer]]:
    """All mock servers, started in parallel once per session."""
    logs = tmp_path_factory.mktemp("mock-logs")
    servers = {name: _start(args, logs / f"{name}.log") for name, args in MOCKS.items()}
    try:
        for s in servers.values():
            _wait(s)
        yield servers
    finally:
        for s in servers.values():
            _stop(s)


@pytest.fixture
def fresh_mock(tmp_path: Path) -> Iterator[Callable[..., MockServer]]:
    """Factory for a private mock server (for tests that count the requests it served)."""
    started: list[MockServer] = []

    def start(*args: str) -> MockServer:
        s = _start(list(args), tmp_path / f"mock{len(started)}.log")
        started.append(s)
        _wait(s)
        return s

    yield start
    for s in started:
        _stop(s)


def ansible_module(args: dict, *, check: bool = False, timeout: float = 120) -> dict:
    """Run the module through ``ansible localhost -m aistack.platform.llm_benchmark``."""
    cmd = [str(BIN / "ansible"), "localhost", "-m", "aistack.platform.llm_benchmark"]
    cmd += ["-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        PATH=f"{BIN}:{env.get('PATH', '')}",
    )
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    try:
        payload = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"no JSON from ansible: {proc.stdout}\n{proc.stderr}") from exc
    return payload["plays"][0]["tasks"][0]["hosts"]["localhost"]


def direct_module(args: dict, tmp_path: Path, *, check: bool = False) -> tuple[int, dict]:
    """Run the module file the way AnsiballZ does: ``python module.py args.json``."""
    argfile = tmp_path / "args.json"
    full = dict(args)
    if check:
        full["_ansible_check_mode"] = True
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": full}))
    env = dict(os.environ, PYTHONPATH=str(REPO / "collections"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "plugins/modules/llm_benchmark.py"), str(argfile)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"module printed no JSON: {proc.stdout}\n{proc.stderr}") from exc
