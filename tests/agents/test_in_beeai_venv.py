"""Runs tests/agents/test_beeai.py with .venv-beeai (own virtualenv: beeai-framework pins
a2a-sdk 0.3, litellm and mcp, which conflict with .venv-agents and the main lock file), so that
`make test` covers it. Collected only by the main venv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv-beeai" / "bin" / "python"


@pytest.mark.slow
def test_beeai_suite_in_beeai_venv() -> None:
    if not PYTHON.exists():
        pytest.skip("run `make beeai` first (.venv-beeai missing)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(PYTHON), "-m", "pytest", "tests/agents/test_beeai.py", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"tests/agents/test_beeai.py in .venv-beeai: {summary[0]}")
    assert proc.returncode == 0, f"{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
