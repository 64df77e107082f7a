"""Runs tests/agents in each agent stack's own virtualenv, so that `make test` covers them.
Each stack conflicts with the main lock file and with the others (LangGraph and a2a-sdk 1.x;
CrewAI's pins; beeai-framework's a2a-sdk 0.3), and in each venv tests/agents/conftest.py
collects only that stack's suite. Collected only by the main venv."""

from __future__ import annotations

import pytest

from tests.side_venv import run_suite_in_side_venv, side_venv_suite


@pytest.mark.slow
@pytest.mark.parametrize(
    "stack",
    [
        pytest.param(stack, marks=side_venv_suite(stack, "tests/agents", timeout_s), id=stack)
        for stack, timeout_s in [("agents", 900), ("crew", 900), ("beeai", 600)]
    ],
)
def test_suite_in_side_venv(stack: str, request: pytest.FixtureRequest) -> None:
    run_suite_in_side_venv(request.node)
