"""Runs a test folder inside one of the side virtualenvs (`make side-venvs`): stacks whose pins
conflict with requirements/lock.txt keep their tests next to the others, and a runner test in
the main venv calls this so that `make test` covers them. Each side venv's conftest collects only
its own suite."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_suite_in_side_venv(stack: str, test_path: str, timeout_s: int) -> None:
    """Run `pytest test_path` with .venv-STACK's Python; skip when the venv is not built."""
    python = REPO / f".venv-{stack}" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"run `make {stack}` first (.venv-{stack} missing)")
    # The main venv's PYTHONPATH (the RAG service's sources) must not leak into another stack.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(python), "-m", "pytest", test_path, "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    summary = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"{test_path} in .venv-{stack}: {summary[0]}")
    assert proc.returncode == 0, f"{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
