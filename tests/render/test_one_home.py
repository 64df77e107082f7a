"""One home for every fact: global defaults, the component list, inventories, template pieces."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

GLOBALS = yaml.safe_load((REPO / "roles/globals/defaults/main.yml").read_text())
CATALOGUE = yaml.safe_load((REPO / "playbooks/vars/architectures.yml").read_text())
COMPONENTS = list(CATALOGUE["aistack_component_catalog"])
# Facts computed at run time (not settings), and the catalogue itself.
COMPUTED = {
    "aistack_component_catalog",
    "aistack_architectures",
    "aistack_effective_components",
    "aistack_enabled_components",
}
SOURCES = [
    p
    for p in [
        *REPO.glob("roles/**/*.yml"),
        *REPO.glob("roles/**/*.j2"),
        *REPO.glob("playbooks/**/*.yml"),
    ]
    if "roles/globals/" not in p.as_posix()
] + [REPO / "site.yml"]
INVENTORIES = ["local", "single-node", "catalyst-lab", "multi-node"]


def test_every_global_setting_has_one_default_in_the_globals_role() -> None:
    used = set()
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\baistack_[a-z0-9_]+(?![a-z0-9_.])", text))
        # A global is used, never defaulted, outside roles/globals.
        defaulted = re.findall(r"\b(aistack_[a-z0-9_]+)\s*\|\s*default\(", text)
        assert not defaulted, f"{path.relative_to(REPO)} defaults {sorted(set(defaulted))}"
    undefined = used - COMPUTED - set(GLOBALS)
    assert not undefined, f"aistack_* settings without a default in roles/globals: {undefined}"
    spec = yaml.safe_load((REPO / "roles/globals/meta/argument_specs.yml").read_text())
    assert set(spec["argument_specs"]["main"]["options"]) == set(GLOBALS)


def test_component_roles_get_the_globals_and_map_nothing_global() -> None:
    for name in COMPONENTS:
        role = REPO / "roles" / name
        if not role.is_dir():
            continue  # planned component (available: false)
        meta = yaml.safe_load((role / "meta/main.yml").read_text())
        assert {"role": "aistack.platform.globals"} in meta["dependencies"], name
        tasks = (role / "tasks/main.yml").read_text()
        # State, delete-data and the Namespace filter are the deploy role's business.
        for mapped in (r"^\s+deploy_state:", r"^\s+deploy_delete_namespaced_data:", "'Namespace'"):
            assert not re.search(mapped, tasks, re.MULTILINE), (name, mapped)


def test_playbooks_list_no_components() -> None:
    # The catalogue is the only list: no playbook names a component role.
    for path in [*REPO.glob("playbooks/*.yml"), REPO / "site.yml"]:
        text = path.read_text(encoding="utf-8")
        # (a module of the same name, `aistack.platform.llm_benchmark:`, is not the role)
        named = [
            c for c in COMPONENTS if re.search(rf"(name:\s*\"?|-\s+)aistack\.platform\.{c}\b", text)
        ]
        assert not named, f"{path.relative_to(REPO)} names {named}"


def test_no_template_repeats_the_shared_pieces() -> None:
    for path in REPO.glob("roles/*/templates/*.j2"):
        if path == REPO / "roles/deploy/templates/aistack_k8s.j2":
            continue  # the one home of these pieces
        text = path.read_text(encoding="utf-8")
        assert "kind: Ingress" not in text, path
        if path.name == "manifests.yml.j2":  # (Helm values follow each chart's own schema)
            for piece in ("allowPrivilegeEscalation", "runAsNonRoot", "httpGet:"):
                assert piece not in text, (path, piece)


def _check(*inventories: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts/inventory-defaults.py"), *map(str, inventories)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_inventories_carry_only_real_overrides() -> None:
    proc = _check(*(REPO / "inventories" / name for name in INVENTORIES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_a_setting_equal_to_its_default_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "inventories" / "single-node"
    shutil.copytree(REPO / "inventories/single-node", inventory)
    localai = yaml.safe_load((REPO / "roles/localai/defaults/main.yml").read_text())
    # A literal default, a templated one (the global it reads), and a real override.
    (inventory / "group_vars/k8s_cluster/pinned.yml").write_text(
        yaml.safe_dump(
            {
                "localai_image_tag": localai["localai_image_tag"],
                "localai_namespace": "ai-stack",
                "ollama_replicas": 2,
            }
        )
    )
    proc = _check(inventory)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "single-node: localai_image_tag in group_vars/k8s_cluster/pinned.yml equals its default",
        "single-node: localai_namespace in group_vars/k8s_cluster/pinned.yml equals its default",
    ]


def test_the_mlflow_image_and_the_tests_mlflow_are_one_release() -> None:
    # The tests' tracking server (.venv-mlflow, built from requirements/mlflow.txt) checks the
    # OTLP ingestion the lab's image serves: the same release, or the check proves nothing.
    tag = yaml.safe_load((REPO / "roles/mlflow/defaults/main.yml").read_text())["mlflow_image_tag"]
    requirements = (REPO / "requirements/mlflow.txt").read_text()
    pins = re.findall(r"^mlflow-skinny==(\S+)$", requirements, re.M)
    assert pins == [str(tag)], (pins, tag)
