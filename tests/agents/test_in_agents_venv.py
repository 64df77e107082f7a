"""Runs tests/agents with .venv-agents (own virtualenv: LangGraph and a2a-sdk conflict with
the main lock file), so that `make test` covers them. Collected only by the main venv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv-agents" / "bin" / "python"


@pytest.mark.slow
def test_agents_suite_in_agents_venv() -> None:
    if not PYTHON.exists():
        pytest.skip("run `make agents` first (.venv-agents missing)")
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
    print(f"tests/agents in .venv-agents: {summary[0]}")
    assert proc.returncode == 0, f"{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
