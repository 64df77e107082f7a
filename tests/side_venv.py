"""Runs a test folder inside one of the side virtualenvs (`make side-venvs`): stacks whose pins
conflict with requirements/lock.txt keep their tests next to the others, and a runner test in
the main venv calls this so that `make test` covers them. Each side venv's conftest collects only
its own suite.

A side suite is a subprocess that mostly waits on its own servers, so the session starts the
collected ones in the background as soon as collection ends (one at a time, next to the main
process: CI has 2 cores) and runs their runner tests last, which then only collect the results.
"""

from __future__ import annotations

import os
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARK = "side_venv_suite"


@dataclass(frozen=True)
class Suite:
    stack: str
    test_path: str
    timeout_s: int

    @property
    def python(self) -> Path:
        return REPO / f".venv-{self.stack}" / "bin" / "python"


def side_venv_suite(stack: str, test_path: str, timeout_s: int) -> pytest.MarkDecorator:
    """Marks a runner test: run `pytest test_path` in .venv-STACK (within timeout_s)."""
    return getattr(pytest.mark, MARK)(stack=stack, test_path=test_path, timeout_s=timeout_s)


def _suite_of(item: pytest.Item) -> Suite | None:
    mark = item.get_closest_marker(MARK)
    return Suite(**mark.kwargs) if mark else None


class _Background:
    """One worker thread running the collected suites in order; stoppable at session end."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._runs: dict[Suite, Future[subprocess.CompletedProcess[str]]] = {}
        self._procs: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()
        self._stopping = False

    def start(self, suites: list[Suite]) -> None:
        for suite in suites:
            if suite in self._runs or not suite.python.exists():
                continue
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="side-venv")
            self._runs[suite] = self._pool.submit(self.run, suite)

    def result(self, suite: Suite) -> subprocess.CompletedProcess[str]:
        future = self._runs.get(suite)
        return future.result() if future else self.run(suite)

    def run(self, suite: Suite) -> subprocess.CompletedProcess[str]:
        # The main venv's PYTHONPATH (the RAG service's sources) must not leak into another stack.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        args = [str(suite.python), "-m", "pytest", suite.test_path, "-q", "-p", "no:cacheprovider"]
        with self._lock:
            if self._stopping:
                return subprocess.CompletedProcess(args, -1, "", "session ended before it ran")
            proc = subprocess.Popen(
                args, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            self._procs.append(proc)
        try:
            out, err = proc.communicate(timeout=suite.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\n(timed out after {suite.timeout_s} s)"
        return subprocess.CompletedProcess(args, proc.returncode, out, err)

    def stop(self) -> None:
        """Session end (also after -x or Ctrl-C): nothing new starts, running suites are ended."""
        with self._lock:
            self._stopping = True
            for proc in self._procs:
                if proc.poll() is None:
                    proc.terminate()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


BACKGROUND = _Background()


def run_runners_last(items: list[pytest.Item]) -> None:
    """Collection hook: the runner tests go last, so the main process has other work meanwhile."""
    items[:] = [item for item in items if not _suite_of(item)] + [
        item for item in items if _suite_of(item)
    ]


def start_selected(items: list[pytest.Item]) -> None:
    """After deselection (-k, -m): start the selected runners' suites in the background."""
    BACKGROUND.start([suite for item in items if (suite := _suite_of(item))])


def run_suite_in_side_venv(item: pytest.Item) -> None:
    """The runner test's body: the suite's outcome (skip when its venv is not built)."""
    suite = _suite_of(item)
    assert suite, f"{item.nodeid} has no @side_venv_suite mark"
    if not suite.python.exists():
        pytest.skip(f"run `make {suite.stack}` first (.venv-{suite.stack} missing)")
    proc = BACKGROUND.result(suite)
    summary = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"{suite.test_path} in .venv-{suite.stack}: {summary[0]}")
    assert proc.returncode == 0, f"{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
