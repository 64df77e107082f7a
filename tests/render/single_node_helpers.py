"""Renders inventories/single-node once per test session and loads the bundle.

Shared by the tests/render modules of the single-node architecture. The render is cached at
module level (not a fixture) so that every test module reuses the same run.
"""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO, run_playbook

INVENTORY = "inventories/single-node"
NAMESPACE = "ai-stack"
COMPONENTS = (
    "gpu_operator",
    "longhorn",
    "ingress_nginx",
    "cert_manager",
    "network_policies",
    "qdrant",
    "localai",
    "ollama",
    "anythingllm",
    "rag_pipeline",
    "agents",
    "llm_benchmark",
    "finetune",
)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def quantity(value: Any) -> float:
    """Kubernetes quantity -> number (cores or bytes): '500m' -> 0.5, '4Gi' -> 4 * 2**30."""
    text = str(value)
    match = re.fullmatch(r"(-?[0-9.]+)(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?", text)
    assert match, f"not a quantity: {value!r}"
    number, unit = float(match.group(1)), match.group(2) or ""
    if unit == "m":
        return number / 1000
    return number * _BINARY.get(unit, _DECIMAL.get(unit, 1))


def same_resources(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    return set(actual) == set(expected) and all(
        quantity(actual[key]) == quantity(expected[key]) for key in expected
    )


@dataclass
class Bundle:
    root: Path
    proc: subprocess.CompletedProcess[str]
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def all_objects(self) -> list[dict[str, Any]]:
        return [obj for objs in self.objects.values() for obj in objs]

    def get(self, kind: str, name: str, component: str | None = None) -> dict[str, Any]:
        pool = self.objects[component] if component else self.all_objects()
        found = [o for o in pool if o["kind"] == kind and o["metadata"]["name"] == name]
        assert found, f"{kind}/{name} not rendered (component {component})"
        return found[0]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.all_objects() if o["kind"] == kind]


def load_bundle(root: Path, proc: subprocess.CompletedProcess[str]) -> Bundle:
    bundle = Bundle(root=root, proc=proc)
    if not root.is_dir():
        return bundle
    for component_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        name = component_dir.name
        bundle.objects[name] = [
            yaml.safe_load(path.read_text()) for path in sorted(component_dir.glob("[0-9]*-*.yaml"))
        ]
        for release_dir in sorted((component_dir / "helm").glob("*")):
            bundle.releases[release_dir.name] = yaml.safe_load(
                (release_dir / "release.yaml").read_text()
            )
            bundle.values[release_dir.name] = (
                yaml.safe_load((release_dir / "values.yaml").read_text()) or {}
            )
        secrets = component_dir / "secrets.required.yaml"
        if secrets.exists():
            bundle.secrets[name] = yaml.safe_load(secrets.read_text())["secrets"]
    return bundle


def render(
    build_root: Path, *extra: str, playbook: str = "site.yml"
) -> subprocess.CompletedProcess[str]:
    return run_playbook(
        playbook,
        "-i",
        INVENTORY,
        "-e",
        "aistack_deploy_mode=render",
        "-e",
        f"aistack_build_root={build_root}",
        *extra,
    )


def _tmpdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def single_node() -> Bundle:
    """The single-node inventory rendered once per session (molecule checks idempotence)."""
    build_root = _tmpdir("aistack-single-node-")
    proc = render(build_root)
    assert proc.returncode == 0, f"render failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return load_bundle(build_root / "single-node", proc)


@functools.cache
def single_node_variant() -> Bundle:
    """Overrides an inventory may set: a registry mirror, an OCI chart mirror, TLS via a
    cert-manager ClusterIssuer and the fine-tuning Job's options (rendered once, platform
    components off to keep it quick)."""
    build_root = _tmpdir("aistack-single-node-variant-")
    extra = {
        "aistack_image_registry": "mirror.example:5000",
        "aistack_ingress_cluster_issuer": "lab-ca",
        "localai_chart": "oci://mirror.example:5000/charts/local-ai",
        "rag_pipeline_service_monitor_enabled": True,
        "aistack_components": {"gpu_operator": False, "longhorn": False, "ingress_nginx": False},
        # The fine-tuning Job with a model image, MLflow and the adapter loaded into vLLM.
        "finetune_base_model": "oci://mirror.example:5000/models/qwen2.5-0.5b-instruct:1.0",
        "finetune_mlflow_tracking_uri": "http://mlflow.ai-stack.svc.cluster.local:5000",
        "finetune_mlflow_token_secret_name": "mlflow-token",
        "finetune_register_vllm_url": "http://qwen-predictor.ai-stack.svc.cluster.local/v1",
        "finetune_register_api_key_secret_name": "vllm-api-key",
    }
    proc = render(build_root, "-e", yaml.safe_dump(extra, default_flow_style=True))
    assert proc.returncode == 0, f"render failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return load_bundle(build_root / "single-node", proc)


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"] if obj["kind"] != "Pod" else obj["spec"]
    return list(spec.get("containers", [])) + list(spec.get("initContainers", []))


def env_map(container: dict[str, Any]) -> dict[str, Any]:
    return {
        item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])
    }


__all__ = [
    "COMPONENTS",
    "NAMESPACE",
    "REPO",
    "Bundle",
    "containers",
    "cpu_only",
    "env_map",
    "quantity",
    "render",
    "same_resources",
    "single_node",
    "single_node_variant",
]


@functools.cache
def cpu_only() -> Bundle:
    """The molecule CPU-only profile (molecule/kind/cpu-only.yml) rendered instead of applied."""
    build_root = _tmpdir("aistack-cpu-only-")
    proc = run_playbook(
        "site.yml",
        "-i",
        INVENTORY,
        "-e",
        "@molecule/kind/cpu-only.yml",
        "-e",
        "aistack_deploy_mode=render",
        "-e",
        f"aistack_build_root={build_root}",
    )
    assert proc.returncode == 0, f"render failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return load_bundle(build_root / "single-node", proc)
