"""Runs tests/finetune in .venv-finetune (torch, transformers, peft: pins that conflict with the
main lock file), so that `make test` covers the fine-tuning job. Collected only by the main venv."""

from __future__ import annotations

import pytest

from tests.side_venv import run_suite_in_side_venv, side_venv_suite


@pytest.mark.slow
@side_venv_suite("finetune", "tests/finetune", 900)
def test_finetune_suite_in_side_venv(request: pytest.FixtureRequest) -> None:
    run_suite_in_side_venv(request.node)
