"""Runs tests/finetune in .venv-finetune (torch, transformers, peft: pins that conflict with the
main lock file), so that `make test` covers the fine-tuning job. Collected only by the main venv."""

from __future__ import annotations

import pytest

from tests.side_venv import run_suite_in_side_venv


@pytest.mark.slow
def test_finetune_suite_in_side_venv() -> None:
    run_suite_in_side_venv("finetune", "tests/finetune", 900)
