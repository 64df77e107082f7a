"""Shared test helpers: the repository root, and running Ansible the way users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import side_venv

# Re-exported: the suites import the server helpers from here (tests/servers.py holds them).
from tests.servers import free_port, stop, wait_http

__all__ = ["BIN", "REPO", "free_port", "stop", "wait_http"]

if TYPE_CHECKING:
    from tests.llm_mocks import MockServer
    from tests.mlflow_server import MlflowServer
    from tests.rag_service import Service
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


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The bundled MiniLM (rag_pipeline's local embedder), loaded once per session and shared by
    every suite that embeds in this process (tests/rag_pipeline, document_ingest, the AWX
    runner's RAG service). Loaded with the interpreter's own sys.intern (see plain_sys_intern)."""
    from ansible_collections.aistack.platform.plugins.module_utils.document_ingest.targets import (
        plain_sys_intern,
    )
    from rag_pipeline.embeddings import LocalEmbedder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the bundled model: nothing to download
    with plain_sys_intern():
        return LocalEmbedder()


@pytest.fixture(scope="session")
def rag_service(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One real RAG service for the session (uvicorn on loopback, embedded Qdrant, the shared
    MiniLM; key tests.rag_service.API_KEY), used by document_ingest and the AWX runner's jobs.
    Each test writes to a collection of its own, so they stay independent."""
    from tests.rag_service import Service

    service = Service(tmp_path_factory.mktemp("rag-service") / "qdrant", embedder)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def llm_mocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, MockServer]]:
    """guidellm mock-servers (tests/llm_mocks.py MOCKS: timed, fast, failing), started in
    parallel once per session; shared by llm_benchmark and the AWX runner's benchmark jobs."""
    from tests.llm_mocks import running_mocks

    with running_mocks(tmp_path_factory.mktemp("mock-logs")) as servers:
        yield servers
