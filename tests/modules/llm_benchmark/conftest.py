"""Fixtures for the llm_benchmark tests: real ``guidellm mock-server`` processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The shared helpers also put collections/ on sys.path for the ansible_collections imports.
from tests.conftest import BIN, REPO
from tests.llm_mocks import MOCKS, MockServer, _start, _stop, _wait

__all__ = ["MOCKS", "MockServer", "_start", "_stop", "_wait"]


@pytest.fixture(scope="session")
def mocks(llm_mocks: dict[str, MockServer]) -> dict[str, MockServer]:
    """All mock servers (tests/conftest.py: llm_mocks, shared with the AWX runner's jobs)."""
    return llm_mocks


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
