"""Runs tests/agents in each agent stack's own virtualenv, so that `make test` covers them.
Each stack conflicts with the main lock file and with the others (LangGraph and a2a-sdk 1.x;
CrewAI's pins; beeai-framework's a2a-sdk 0.3), and in each venv tests/agents/conftest.py
collects only that stack's suite. Collected only by the main venv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stack", "timeout_s"),
    [("agents", 900), ("crew", 900), ("beeai", 600)],
)
def test_suite_in_side_venv(stack: str, timeout_s: int) -> None:
    python = REPO / f".venv-{stack}" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"run `make {stack}` first (.venv-{stack} missing)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(python), "-m", "pytest", "tests/agents", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    summary = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"tests/agents in .venv-{stack}: {summary[0]}")
    assert proc.returncode == 0, f"{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
