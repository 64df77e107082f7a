"""Shared test helpers: the repository root, and running Ansible the way users do."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import side_venv

if TYPE_CHECKING:
    from tests.mlflow_server import MlflowServer
    from tests.s3_server import S3Server

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Import the collection's Python code as Ansible does (ansible_collections.aistack.platform...).
sys.path.insert(0, str(REPO / "collections"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    side_venv.run_runners_last(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    side_venv.start_selected(session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    side_venv.BACKGROUND.stop()


def free_port() -> int:
    """A TCP port free on loopback right now (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Wait until ``url`` answers below 500 (a server the tests started); fail early when its
    process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server the tests started (kill it after 10 s)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{BIN}:{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def run_playbook(*args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-playbook"), *args],
        cwd=cwd,
        env=ansible_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_module(name: str, args: dict, *, check: bool = False, diff: bool = False) -> dict:
    """Runs one module through `ansible localhost -m` and returns its JSON result."""
    cmd = [str(BIN / "ansible"), "localhost", "-m", name, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=ansible_env(
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        payload = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"no JSON from ansible: {proc.stdout}\n{proc.stderr}") from exc
    return payload["plays"][0]["tasks"][0]["hosts"]["localhost"]


def run_module_process(
    name: str, args: dict, *, check: bool = False, diff: bool = False, timeout: float = 300
) -> dict:
    """Runs one of the collection's modules in a child Python process, as AnsiballZ would.

    The module never shares the test process: importing Ansible's module_utils patches
    interpreter globals (``sys.intern``), after which torch cannot be imported any more, so
    in-process module runs made the suites depend on their order. Faster than ``run_module``
    (no controller, no connection plugin) and it returns the module's own JSON result.
    """
    module_args = {**args, "_ansible_check_mode": check, "_ansible_diff": diff}
    proc = subprocess.run(
        [sys.executable, str(REPO / "plugins" / "modules" / f"{name}.py")],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": module_args}),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "collections")},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"{name}: no JSON result\n{proc.stdout}\n{proc.stderr}") from exc


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[MlflowServer]:
    """A real MLflow tracking server (SQLite backend) for the whole session, shared by every
    suite that asks for it (tests/mlflow_server.py); skipped without .venv-mlflow."""
    from tests.mlflow_server import MLFLOW, start_mlflow  # here: it imports this module

    if not MLFLOW.exists():
        pytest.skip("run `make mlflow` first (.venv-mlflow missing)")
    server = start_mlflow()
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 API server (moto_server, signatures checked) with one bucket, for the whole
    session (tests/s3_server.py); skipped without .venv-s3."""
    from tests.s3_server import MOTO_SERVER, running_s3_server  # here: it imports this module

    if not MOTO_SERVER.exists():
        pytest.skip("run `make s3` first (.venv-s3 missing)")
    with running_s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server
