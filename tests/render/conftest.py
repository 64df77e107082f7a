"""The catalyst-lab render, once per session, shared by the render test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.render.catalyst_helpers import render


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalyst-lab")
    render(root)
    return root / "catalyst-lab"
