"""The deploy mechanism's render mode, end to end through ansible-playbook."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import REPO, run_playbook


def test_broken_manifest_fails_naming_file_object_and_error(tmp_path: Path) -> None:
    proc = run_playbook(
        str(REPO / "tests/fixtures/broken.yml"),
        "-e",
        f"aistack_render_dir={tmp_path}",
        ANSIBLE_ROLES_PATH=f"{REPO / 'tests/fixtures/roles'}:{REPO / 'roles'}",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "1 invalid object(s), nothing written" in out
    assert f"{tmp_path}/broken/02-deployment-broken-app.yaml" in out
    assert "Deployment/broken-app (namespace fixture)" in out
    assert "spec.template.spec.containers[0].ports[0].containerPort" in out
    assert "'http' is not of type 'integer'" in out
    # Nothing of the component is written, not even its valid ConfigMap.
    assert not (tmp_path / "broken").exists()


def test_unknown_component_fails_before_rendering(tmp_path: Path) -> None:
    proc = run_playbook(
        "site.yml",
        "-i",
        "inventories/single-node",
        "-e",
        "aistack_deploy_mode=render",
        "-e",
        f"aistack_build_root={tmp_path}",
        "-e",
        '{"aistack_components": {"qdrantt": true}}',
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Unknown component(s) in aistack_components: qdrantt" in out
    assert list(tmp_path.iterdir()) == []


def test_unavailable_component_fails_before_rendering(tmp_path: Path) -> None:
    # Every component of the catalogue is available today: a planned one is added for the test.
    catalog = yaml.safe_load((REPO / "playbooks/vars/architectures.yml").read_text())
    planned = catalog["aistack_component_catalog"] | {
        "vector_db_v2": {"layer": "data", "available": False}
    }
    proc = run_playbook(
        "site.yml",
        "-i",
        "inventories/catalyst-lab",
        "-e",
        "aistack_deploy_mode=render",
        "-e",
        f"aistack_build_root={tmp_path}",
        "-e",
        json.dumps(
            {"aistack_component_catalog": planned, "aistack_components": {"vector_db_v2": True}}
        ),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "enabled but not available yet: vector_db_v2" in out
    assert list(tmp_path.iterdir()) == []


def test_wrong_deploy_mode_fails_with_variable_named(tmp_path: Path) -> None:
    proc = run_playbook(
        "site.yml",
        "-i",
        "inventories/single-node",
        "-e",
        "aistack_deploy_mode=yolo",
        "-e",
        f"aistack_build_root={tmp_path}",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "aistack_deploy_mode" in out
    assert "yolo" in out
    assert list(tmp_path.iterdir()) == []
