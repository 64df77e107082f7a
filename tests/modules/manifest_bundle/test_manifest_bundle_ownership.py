"""manifest_bundle owns only what it writes (its marker), refuses a dest that is not its own,
adopts bundles of its earlier versions, and refuses plain-text secrets in container env.

The module runs in a child process (run_module_process), as AnsiballZ would run it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_module_process
from tests.modules.manifest_bundle.objects import RELEASE, SERVICE

MARKER = ".aistack-bundle.json"
BUNDLE = ["01-service-qdrant.yaml", "helm/qdrant/release.yaml", "helm/qdrant/values.yaml"]


def bundle(dest: Path, check: bool = False, **args: Any) -> dict[str, Any]:
    params = {"dest": str(dest), "manifests": [SERVICE], "helm_releases": [RELEASE], **args}
    return run_module_process("manifest_bundle", params, check=check, diff=True, timeout=120)


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def marker(dest: Path) -> dict[str, Any]:
    return json.loads((dest / MARKER).read_text())


def warnings(result: dict[str, Any]) -> str:
    return json.dumps(result.get("warnings", []))


# --------------------------------------------------------------------------- ownership


def test_prune_and_absent_remove_only_what_it_wrote(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    first = bundle(dest)
    assert first["changed"] is True and first["unmanaged_files"] == []
    assert marker(dest) == {
        "format": 1,
        "owner": "aistack.platform.manifest_bundle",
        "files": sorted([*BUNDLE, "kustomization.yaml"]),
    }
    # Someone else's files, one of them YAML in a folder of the bundle's own.
    (dest / "README.md").write_text("notes")
    (dest / "helm" / "extra.yaml").write_text("kind: mine\n")

    planned = bundle(dest, check=True, helm_releases=[])
    assert planned["changed_files"] == ["helm/qdrant/release.yaml", "helm/qdrant/values.yaml"]
    assert (dest / "helm" / "qdrant" / "values.yaml").exists()  # check mode writes nothing
    pruned = bundle(dest, helm_releases=[])
    assert pruned["changed_files"] == planned["changed_files"]
    assert pruned["unmanaged_files"] == ["README.md", "helm/extra.yaml"]
    kept = ["README.md", "helm/extra.yaml"]
    assert files(dest) == sorted([MARKER, "01-service-qdrant.yaml", "kustomization.yaml", *kept])
    assert marker(dest)["files"] == ["01-service-qdrant.yaml", "kustomization.yaml"]

    # A file of someone else where a bundle file goes: refused, nothing written.
    (dest / "helm" / "qdrant").mkdir()
    (dest / "helm" / "qdrant" / "values.yaml").write_text("mine: true\n")
    clash = bundle(dest)
    assert clash["failed"] is True
    assert "did not write are in the way of the bundle, nothing written" in clash["msg"]
    assert "helm/qdrant/values.yaml" in clash["msg"]
    assert (dest / "helm" / "qdrant" / "values.yaml").read_text() == "mine: true\n"
    assert not (dest / "helm" / "qdrant" / "release.yaml").exists()

    gone = run_module_process("manifest_bundle", {"dest": str(dest), "state": "absent"})
    assert gone["changed"] is True
    assert gone["changed_files"] == ["01-service-qdrant.yaml", "kustomization.yaml"]
    assert "kept 3 file(s) this module did not write" in warnings(gone)
    assert files(dest) == ["README.md", "helm/extra.yaml", "helm/qdrant/values.yaml"]


def test_absent_removes_its_own_directory(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    bundle(dest)
    absent = {"dest": str(dest), "state": "absent"}
    planned = run_module_process("manifest_bundle", absent, check=True, diff=True)
    assert planned["changed"] is True and len(planned["diff"]["before"]["files"]) == 4
    assert (dest / MARKER).exists()
    assert run_module_process("manifest_bundle", absent)["changed"] is True
    assert not dest.exists()
    assert run_module_process("manifest_bundle", absent)["changed"] is False


def test_dest_that_is_a_file_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "bundle.yaml"
    dest.write_text("not a directory\n")
    for state in ("present", "absent"):
        result = bundle(dest, state=state)
        assert result["failed"] is True, result
        assert f"dest {dest} exists and is not a directory" in result["msg"]
    assert dest.read_text() == "not a directory\n"


def test_foreign_non_empty_directory_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "somebody"
    (dest / "sub").mkdir(parents=True)
    (dest / "01-service-qdrant.yaml").write_text("written by hand\n")  # a bundle name, no header
    (dest / "sub" / "data.txt").write_text("data")
    for state in ("present", "absent"):
        result = bundle(dest, state=state)
        assert result["failed"] is True, result
        assert (
            "is not empty and holds no bundle of aistack.platform.manifest_bundle"
            in (result["msg"])
        )
        assert "01-service-qdrant.yaml, sub/data.txt" in result["msg"]
    assert files(dest) == ["01-service-qdrant.yaml", "sub/data.txt"]
    assert (dest / "01-service-qdrant.yaml").read_text() == "written by hand\n"


def test_bundle_of_an_earlier_version_is_adopted(tmp_path: Path) -> None:
    """The earlier version wrote the same files without a marker (as in build/<inv>/<comp>)."""
    dest = tmp_path / "bundle"
    bundle(dest)
    (dest / MARKER).unlink()
    (dest / "notes.yaml").write_text("kept: true\n")  # not written by the module

    planned = bundle(dest, check=True)
    assert planned["changed"] is True and planned["changed_files"] == []
    assert planned["diff"][-1]["after_header"].endswith(MARKER)
    assert "adopted 4 file(s) that an earlier version of this module wrote" in warnings(planned)
    assert not (dest / MARKER).exists()

    adopted = bundle(dest, helm_releases=[])
    assert adopted["changed_files"] == ["helm/qdrant/release.yaml", "helm/qdrant/values.yaml"]
    assert adopted["unmanaged_files"] == ["notes.yaml"]
    assert marker(dest)["files"] == ["01-service-qdrant.yaml", "kustomization.yaml"]
    assert files(dest) == [MARKER, "01-service-qdrant.yaml", "kustomization.yaml", "notes.yaml"]
    again = bundle(dest, helm_releases=[])
    assert again["changed"] is False and "warnings" not in again


# --------------------------------------------------------------------------- plain-text secrets


def workload(kind: str, env: list[dict[str, Any]], init: bool = False) -> dict[str, Any]:
    containers = {"initContainers" if init else "containers": [{"name": "app", "env": env}]}
    if init:
        containers["containers"] = [{"name": "main", "image": "busybox:1.36"}]
    for container in containers.get("initContainers", []) + containers.get("containers", []):
        container.setdefault("image", "busybox:1.36")
    pod: dict[str, Any] = {"spec": containers}
    if kind == "Pod":
        spec: dict[str, Any] = containers
    elif kind == "CronJob":
        pod["spec"]["restartPolicy"] = "Never"
        spec = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": pod}}}
    else:
        pod["metadata"] = {"labels": {"app": "x"}}
        spec = {"selector": {"matchLabels": {"app": "x"}}, "template": pod}
        if kind == "StatefulSet":
            spec["serviceName"] = "x"
    name = kind.lower()
    return {
        "apiVersion": "v1" if kind == "Pod" else "batch/v1" if kind == "CronJob" else "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ai-stack"},
        "spec": spec,
    }


def test_plain_text_secret_in_env_is_refused(tmp_path: Path) -> None:
    manifests = [
        workload("Pod", [{"name": "DB_PASSWORD", "value": "hunter2-pod"}]),
        workload("CronJob", [{"name": "openai_api_key", "value": "sk-cron"}], init=True),
        workload("StatefulSet", [{"name": "HF-Token", "value": "hf_statefulset"}]),
    ]
    dest = tmp_path / "out"
    for validate in (True, False):  # refused whether or not schemas are checked
        result = bundle(dest, manifests=manifests, helm_releases=[], validate=validate)
        assert result["failed"] is True, result
        assert result["msg"].startswith("3 invalid object(s), nothing written")
        errors = {e["object"]: e["error"] for e in result["errors"]}
        assert errors["Pod/pod (namespace ai-stack)"].startswith(
            "spec.containers[0].env[0] (container app): environment variable DB_PASSWORD has a "
            "plain-text value"
        )
        assert errors["CronJob/cronjob (namespace ai-stack)"].startswith(
            "spec.jobTemplate.spec.template.spec.initContainers[0].env[0] (container app): "
            "environment variable openai_api_key"
        )
        assert "variable HF-Token" in errors["StatefulSet/statefulset (namespace ai-stack)"]
        assert "valueFrom.secretKeyRef" in result["msg"]
        output = json.dumps({k: v for k, v in result.items() if k != "invocation"})
        assert not any(value in output for value in ("hunter2-pod", "sk-cron", "hf_statefulset"))
        assert not dest.exists()


def test_secrets_from_value_from_and_ordinary_env_are_accepted(tmp_path: Path) -> None:
    env = [
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "api-key"}}},
        {"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/password"},
        {"name": "VLLM_MAX_TOKENS", "value": "4096"},
        {"name": "TOKENIZERS_PARALLELISM", "value": "false"},
        {"name": "LOCAL_AI_MODEL_TOKEN_LIMIT", "value": "4096"},
        {"name": "PGPASSWORD", "value": "$(DB_PASSWORD)"},
        {"name": "LOCALAI_API_KEY", "value": ""},
    ]
    manifests = [workload(kind, env) for kind in ("Deployment", "DaemonSet", "Pod")]
    result = bundle(tmp_path / "out", manifests=manifests, helm_releases=[])
    assert result.get("failed") is not True, result.get("msg")
    assert result["kinds"] == {"Deployment": 1, "DaemonSet": 1, "Pod": 1}


@pytest.mark.parametrize("name", ["ACCESS_TOKEN", "aws_secret_access_key", "Client.Secret"])
def test_secret_like_names(name: str) -> None:
    from ansible_collections.aistack.platform.plugins.module_utils import k8s_validation as kv

    assert kv.secret_like(name)
    assert not kv.secret_like(name + "_FILE")
    obj = workload("Pod", [{"name": name, "value": "x"}])
    assert len(kv.plain_text_secrets(obj)) == 1
