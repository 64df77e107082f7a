"""The catalyst-lab render, once per session, shared by the render test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.render.catalyst_helpers import lab as rendered_lab


@pytest.fixture(scope="session")
def lab() -> Path:
    return rendered_lab()
