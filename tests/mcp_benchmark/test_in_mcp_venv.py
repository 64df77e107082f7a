"""Runs tests/mcp_benchmark in .venv-mcp (the MCP SDK's pins conflict with the main lock), so
that `make test` covers the benchmark MCP server; plus static checks of its image recipe.
Collected only by the main venv."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.side_venv import REPO, run_suite_in_side_venv, side_venv_suite

SERVICE = REPO / "services" / "mcp_benchmark"


def _pins(name: str) -> dict[str, str]:
    lines = (REPO / "requirements" / name).read_text().splitlines()
    reqs = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    bad = [r for r in reqs if not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[A-Za-z0-9_.+\-]+", r)]
    assert not bad, f"{name}: not pinned exactly: {bad}"
    return {re.split(r"[\[=]", r)[0].lower(): r.split("==")[1] for r in reqs}


def test_image_recipe_matches_the_package() -> None:
    """The image tag is the package version and the mcp_servers role's tag; the image installs
    the hashed pins, runs as the uid the role sets and carries the engine as llm_benchmark."""
    init = (SERVICE / "aistack_mcp_benchmark" / "__init__.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', init)
    assert match
    recipe = (SERVICE / "Containerfile").read_text()
    assert f"-t ghcr.io/aistack/mcp-benchmark:{match[1]} ." in recipe
    assert "COPY requirements/images/mcp.txt" in recipe and "--require-hashes" in recipe
    assert "COPY plugins/module_utils/llm_benchmark ./llm_benchmark" in recipe
    role = yaml.safe_load((REPO / "roles/mcp_servers/defaults/main.yml").read_text())
    uid = role["mcp_servers_benchmark_run_as_user"]
    assert re.search(rf"^USER {uid}$", recipe, re.M) and "EXPOSE 8000" in recipe
    assert recipe.count("\nFROM ") == 2  # build stage + runtime stage


def test_one_mcp_sdk_version_across_the_stacks() -> None:
    pins = _pins("mcp.txt")
    for other in ("crew.txt", "beeai.txt"):
        assert _pins(other)["mcp"] == pins["mcp"], other


@pytest.mark.slow
@side_venv_suite("mcp", "tests/mcp_benchmark", 600)
def test_mcp_server_suite_in_side_venv(request: pytest.FixtureRequest) -> None:
    run_suite_in_side_venv(request.node)
