"""Helpers for the catalyst-lab render tests: one render per session, YAML readers."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import run_playbook

INVENTORY = "inventories/catalyst-lab"


def render(build_root: Path, *extra: str, playbooks: tuple[str, ...] = ("site.yml",)) -> str:
    """Renders the catalyst-lab inventory into build_root; returns the combined output."""
    args: list[str] = [*playbooks, "-i", INVENTORY, "-e", "aistack_deploy_mode=render"]
    args += ["-e", "aistack_embedded_enabled=false", "-e", f"aistack_build_root={build_root}"]
    for item in extra:
        args += ["-e", item]
    proc = run_playbook(*args)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RenderError(out)
    return out


class RenderError(AssertionError):
    """The playbook failed; the message is its output."""


@functools.cache
def lab() -> Path:
    """The catalyst-lab inventory rendered once per session (shared by the render test modules)."""
    root = Path(tempfile.mkdtemp(prefix="aistack-catalyst-lab-"))
    atexit.register(shutil.rmtree, root, True)
    render(root)
    return root / "catalyst-lab"


@dataclass
class Bundle:
    """One component's rendered bundle."""

    root: Path

    def objects(self) -> list[dict[str, Any]]:
        docs = []
        for path in sorted(self.root.glob("[0-9]*.yaml")):
            docs.append(yaml.safe_load(path.read_text(encoding="utf-8")))
        return docs

    def get(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [
            o for o in self.objects() if o["kind"] == kind and name in (None, o["metadata"]["name"])
        ]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} objects in {self.root}"
        return found[0]

    def kinds(self) -> list[str]:
        return [o["kind"] for o in self.objects()]

    def values(self, release: str) -> dict[str, Any]:
        path = self.root / "helm" / release / "values.yaml"
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return data

    def release(self, release: str) -> dict[str, Any]:
        path = self.root / "helm" / release / "release.yaml"
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return data

    def required_secrets(self) -> list[dict[str, Any]]:
        path = self.root / "secrets.required.yaml"
        if not path.exists():
            return []
        secrets: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["secrets"]
        return secrets

    def remote(self) -> list[dict[str, Any]]:
        """The upstream release manifests listed in remote.yaml ([] when there are none)."""
        path = self.root / "remote.yaml"
        if not path.exists():
            return []
        manifests: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))[
            "manifests"
        ]
        return manifests

    def kustomization(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load(
            (self.root / "kustomization.yaml").read_text(encoding="utf-8")
        )
        return data

    def text(self) -> str:
        return "\n".join(p.read_text(encoding="utf-8") for p in sorted(self.root.rglob("*.yaml")))


def env_by_name(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}
