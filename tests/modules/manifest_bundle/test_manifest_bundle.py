"""aistack.platform.manifest_bundle: rendering, validation, idempotency, check mode, diff."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_module
from tests.modules.manifest_bundle.objects import RELEASE, SERVICE


def bundle(dest: Path, **args: object) -> dict:
    return {"dest": str(dest), "manifests": [SERVICE], "helm_releases": [RELEASE], **args}


def test_render_is_idempotent_and_writes_a_gitops_bundle(tmp_path: Path) -> None:
    first = run_module("aistack.platform.manifest_bundle", bundle(tmp_path))
    assert first["changed"] is True
    assert first["objects"] == 1 and first["releases"] == 1
    assert first["kinds"] == {"Service": 1}
    assert first["kubernetes_version"].startswith("1.31")
    assert sorted(first["files"]) == [
        "01-service-qdrant.yaml",
        "helm/qdrant/release.yaml",
        "helm/qdrant/values.yaml",
        "kustomization.yaml",
    ]
    assert yaml.safe_load((tmp_path / "01-service-qdrant.yaml").read_text()) == SERVICE
    assert yaml.safe_load((tmp_path / "helm/qdrant/values.yaml").read_text()) == RELEASE["values"]
    release = yaml.safe_load((tmp_path / "helm/qdrant/release.yaml").read_text())
    assert release["version"] == "1.19.1" and "values" not in release
    kustomization = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["01-service-qdrant.yaml"]

    second = run_module("aistack.platform.manifest_bundle", bundle(tmp_path))
    assert second["changed"] is False
    assert second["changed_files"] == []


def test_check_mode_and_diff_change_nothing(tmp_path: Path) -> None:
    run_module("aistack.platform.manifest_bundle", bundle(tmp_path))
    changed = copy.deepcopy(SERVICE)
    changed["spec"]["ports"][0]["port"] = 6334
    before = (tmp_path / "01-service-qdrant.yaml").read_text()
    result = run_module(
        "aistack.platform.manifest_bundle",
        bundle(tmp_path, manifests=[changed]),
        check=True,
        diff=True,
    )
    assert result["changed"] is True
    assert result["changed_files"] == ["01-service-qdrant.yaml"]
    assert "6334" in result["diff"][0]["after"] and "6333" in result["diff"][0]["before"]
    assert (tmp_path / "01-service-qdrant.yaml").read_text() == before


def test_prune_removes_files_no_longer_rendered(tmp_path: Path) -> None:
    run_module("aistack.platform.manifest_bundle", bundle(tmp_path))
    result = run_module("aistack.platform.manifest_bundle", bundle(tmp_path, helm_releases=[]))
    assert result["changed"] is True
    assert set(result["changed_files"]) == {"helm/qdrant/release.yaml", "helm/qdrant/values.yaml"}
    assert not (tmp_path / "helm").exists()


def test_state_absent_removes_the_bundle(tmp_path: Path) -> None:
    dest = tmp_path / "component"
    run_module("aistack.platform.manifest_bundle", bundle(dest))
    result = run_module("aistack.platform.manifest_bundle", {"dest": str(dest), "state": "absent"})
    assert result["changed"] is True
    assert not dest.exists()
    again = run_module("aistack.platform.manifest_bundle", {"dest": str(dest), "state": "absent"})
    assert again["changed"] is False


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            {**SERVICE, "spec": {**SERVICE["spec"], "selectr": {}}},
            "Additional properties are not allowed ('selectr' was unexpected)",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s", "namespace": "x"},
                "stringData": {"password": "hunter2"},
            },
            "Secret carries data in plain text",
        ),
        (
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
            "not a registered custom resource",
        ),
        (
            {
                "apiVersion": "postgresql.cnpg.io/v1",
                "kind": "Cluster",
                "metadata": {"name": "pg", "namespace": "db"},
                "spec": {"instances": 1},
            },
            "spec.storage.size: required by the Cluster CRD",
        ),
        (
            {
                "apiVersion": "agent.kagenti.dev/v1alpha1",
                "kind": "AgentRuntime",
                "metadata": {"name": "router", "namespace": "ai-stack"},
                "spec": {
                    "type": "agent",
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment"},
                },
            },
            "spec.targetRef.name: required by the AgentRuntime CRD",
        ),
        (
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "Bad_Name"}, "spec": {}},
            "is not a valid DNS name",
        ),
    ],
    ids=[
        "unknown-field",
        "plain-secret",
        "unregistered-crd",
        "crd-missing-field",
        "kagenti-crd-missing-field",
        "bad-name",
    ],
)
def test_invalid_objects_fail_and_nothing_is_written(
    tmp_path: Path, manifest: dict, message: str
) -> None:
    result = run_module(
        "aistack.platform.manifest_bundle",
        {"dest": str(tmp_path / "out"), "manifests": [SERVICE, manifest]},
    )
    assert result.get("failed") is True
    assert message in result["msg"]
    assert "02-" in result["errors"][0]["file"]
    # The module never repeats object content in its messages (secret values included).
    assert "hunter2" not in result["msg"] + str(result["errors"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("version", ["latest", "^1.19", "1.19"])
def test_unpinned_chart_versions_are_rejected(tmp_path: Path, version: str) -> None:
    result = run_module(
        "aistack.platform.manifest_bundle",
        bundle(tmp_path, manifests=[], helm_releases=[{**RELEASE, "version": version}]),
    )
    assert result.get("failed") is True
    assert "is not pinned" in result["msg"]
    assert "HelmRelease/qdrant" in result["msg"]


def test_unsupported_kubernetes_version_is_a_clear_error(tmp_path: Path) -> None:
    result = run_module(
        "aistack.platform.manifest_bundle", bundle(tmp_path, kubernetes_version="1.99")
    )
    assert result.get("failed") is True
    assert "no schemas for Kubernetes 1.99" in result["msg"]


def test_secret_references_are_rendered_without_values(tmp_path: Path) -> None:
    result = run_module(
        "aistack.platform.manifest_bundle",
        bundle(
            tmp_path,
            secrets=[{"name": "qdrant-api-key", "namespace": "ai-stack", "keys": ["api-key"]}],
        ),
    )
    assert result["changed"] is True
    required = yaml.safe_load((tmp_path / "secrets.required.yaml").read_text())
    assert required["secrets"] == [
        {
            "name": "qdrant-api-key",
            "namespace": "ai-stack",
            "keys": ["api-key"],
            "source": "existing",
        }
    ]


GATEWAY_CRDS = (
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.0/standard-install.yaml"
)


def test_remote_manifests_are_listed_first_and_not_fetched(tmp_path: Path) -> None:
    remote = [
        {"name": "gateway-api-crds", "url": GATEWAY_CRDS},
        {"name": "mirrored", "url": "/srv/mirror/operator.yaml", "checksum": "sha256:" + "ab" * 32},
    ]
    first = run_module(
        "aistack.platform.manifest_bundle", bundle(tmp_path, remote_manifests=remote)
    )
    assert first["changed"] is True and first["remote_manifests"] == 2
    listed = yaml.safe_load((tmp_path / "remote.yaml").read_text())["manifests"]
    assert listed == remote
    # URLs are kustomize resources (before the bundle's own objects); local paths are not
    kustomization = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [GATEWAY_CRDS, "01-service-qdrant.yaml"]
    again = run_module(
        "aistack.platform.manifest_bundle", bundle(tmp_path, remote_manifests=remote)
    )
    assert again["changed"] is False


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"name": "crds", "url": "https://raw.githubusercontent.com/o/r/main/release/op.yaml"},
            "follows a branch; pin a release version or give a checksum",
        ),
        (
            {"name": "crds", "url": "https://example.org/crds.yaml"},
            "carries no version; pin a release version or give a checksum",
        ),
        ({"name": "crds", "url": "crds/v1.0.0.yaml"}, "must be an http(s) URL or an absolute path"),
        ({"name": "CRDs", "url": GATEWAY_CRDS}, "must be lower-case letters, digits and '-'"),
        (
            {"name": "crds", "url": GATEWAY_CRDS, "checksum": "abc"},
            "must be <algorithm>:<hex digest>",
        ),
        (
            {"name": "crds", "url": GATEWAY_CRDS, "checksum": "sha256:00ff"},
            "must be <algorithm>:<hex digest>",
        ),
        (
            {"name": "crds", "url": "https://github.com/o/r/config/crd?ref=v1.2"},
            "carries no version",
        ),
        (
            {"name": "crds", "url": "http://mirror.local/v1.4.0/standard-install.yaml"},
            "is plain http: give a checksum",
        ),
    ],
)
def test_unpinned_or_malformed_remote_manifests_are_rejected(
    tmp_path: Path, item: dict, message: str
) -> None:
    result = run_module(
        "aistack.platform.manifest_bundle",
        bundle(tmp_path / "out", remote_manifests=[item]),
    )
    assert result.get("failed") is True
    assert message in result["msg"] and "RemoteManifest/" in result["msg"]
    assert not (tmp_path / "out").exists()


def test_a_checksum_pins_an_unversioned_url_and_names_are_unique(tmp_path: Path) -> None:
    pinned = {
        "name": "crds",
        "url": "https://example.org/crds.yaml",
        "checksum": "sha256:" + "0f" * 32,
    }
    ok = run_module("aistack.platform.manifest_bundle", bundle(tmp_path, remote_manifests=[pinned]))
    assert ok.get("failed") is not True, ok
    twice = run_module(
        "aistack.platform.manifest_bundle",
        bundle(tmp_path, remote_manifests=[pinned, {**pinned, "url": GATEWAY_CRDS}]),
    )
    assert twice.get("failed") is True and "name 'crds' is used twice" in twice["msg"]
