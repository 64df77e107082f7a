"""Runs the crew's tests (tests/agents/test_crew.py) with .venv-crew (own virtualenv: CrewAI's
pins conflict with the main lock file and with .venv-agents), so that `make test` covers them.
Collected only by the main venv; in .venv-crew, tests/agents/conftest.py collects only the crew's
tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv-crew" / "bin" / "python"


@pytest.mark.slow
def test_crew_suite_in_crew_venv() -> None:
    if not PYTHON.exists():
        pytest.skip("run `make crew` first (.venv-crew missing)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(PYTHON), "-m", "pytest", "tests/agents", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    summary = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"tests/agents (crew) in .venv-crew: {summary[0]}")
    assert proc.returncode == 0, f"{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
