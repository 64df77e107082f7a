"""The component roles of the single-node architecture follow the role contract: every default
documented in meta/argument_specs.yml (and the other way round), galaxy metadata, a validate
entry point, deploy as the only way to the cluster, and a README generated from the spec."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

# Every available component of the catalogue is a component role; node_preflight (host checks),
# deploy (the mechanism) and globals (the global settings) are the roles outside it.
_CATALOGUE = yaml.safe_load((REPO / "playbooks/vars/architectures.yml").read_text())
ROLES = [
    name for name, entry in _CATALOGUE["aistack_component_catalog"].items() if entry["available"]
]
ALL_ROLES = [*ROLES, "node_preflight", "deploy", "globals"]


def load(role: str, path: str) -> dict:
    return yaml.safe_load((REPO / "roles" / role / path).read_text()) or {}


@pytest.mark.parametrize("role", ALL_ROLES)
def test_argument_spec_documents_every_default(role: str) -> None:
    defaults = load(role, "defaults/main.yml")
    specs = load(role, "meta/argument_specs.yml")["argument_specs"]
    options = specs["main"]["options"]
    optional = {n for n, o in options.items() if not o.get("required")}
    assert set(defaults) == optional, set(defaults) ^ optional
    for name, option in options.items():
        assert option.get("description"), name
        assert option.get("type"), name
        if name not in optional:
            continue
        value = defaults[name]
        # Literal defaults are repeated in the spec for ansible-doc, and must match. A templated
        # default (one derived from a global setting or another variable) is written only in
        # defaults/main.yml: a value copied into the spec would go stale when the source changes.
        # Long structured defaults (lists with suboptions) are shown from defaults/main.yml.
        if "{{" in str(value):
            assert "default" not in option, (name, option["default"], value)
        elif not ("options" in option and "default" not in option):
            assert option.get("default") == value, (name, option.get("default"), value)
        if option.get("choices"):
            assert value in option["choices"] or "{{" in str(value), name


@pytest.mark.parametrize("role", ROLES)
def test_component_role_contract(role: str) -> None:
    specs = load(role, "meta/argument_specs.yml")["argument_specs"]
    # Preflight validates every enabled component through this entry point.
    assert specs["validate"] == specs["main"]
    assert (REPO / "roles" / role / "tasks/validate.yml").exists()
    tasks = yaml.safe_load((REPO / "roles" / role / "tasks/main.yml").read_text())
    assert tasks[0]["ansible.builtin.import_tasks"] == "validate.yml"
    deploys = [t for t in tasks if "ansible.builtin.include_role" in t]
    assert len(deploys) == 1
    assert deploys[0]["ansible.builtin.include_role"]["name"] == "aistack.platform.deploy"
    assert deploys[0]["vars"]["deploy_component"] == role
    galaxy = load(role, "meta/main.yml")["galaxy_info"]
    assert galaxy["license"] and galaxy["description"] and galaxy["min_ansible_version"]


def test_preflight_validates_every_component_role() -> None:
    plays = yaml.safe_load((REPO / "playbooks/preflight.yml").read_text())
    includes = [
        task["ansible.builtin.include_role"]
        for play in plays
        for task in play.get("tasks", [])
        if "ansible.builtin.include_role" in task
    ]
    assert any(i.get("tasks_from") == "validate" for i in includes)
    for role in ROLES:
        assert (REPO / "roles" / role / "tasks/validate.yml").is_file(), role


def test_readmes_are_generated_from_the_argument_specs() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/role-readme.py"),
            "--check",
            *(str(REPO / "roles" / r) for r in ALL_ROLES),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
