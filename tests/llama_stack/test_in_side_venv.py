"""Runs tests/llama_stack in .venv-llamastack (`make llamastack`), so that `make test` covers the
real Llama Stack server. Collected only by the main venv."""

from __future__ import annotations

import pytest

from tests.side_venv import run_suite_in_side_venv, side_venv_suite


@pytest.mark.slow
@side_venv_suite("llamastack", "tests/llama_stack", 600)
def test_llama_stack_suite_in_side_venv(request: pytest.FixtureRequest) -> None:
    run_suite_in_side_venv(request.node)
