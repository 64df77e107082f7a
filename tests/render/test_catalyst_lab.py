"""The catalyst-lab architecture, rendered once per session, checked per component.

Render mode only (no cluster): every manifest is validated strictly against Kubernetes 1.31
by the deploy mechanism; these tests check the facts that make the stack work together.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.render.catalyst_helpers import Bundle, RenderError, env_by_name, render


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalyst-lab")
    render(root)
    return root / "catalyst-lab"


def bundle(lab: Path, component: str) -> Bundle:
    path = lab / component
    assert path.is_dir(), f"{component} was not rendered"
    return Bundle(path)


# -- idempotence ------------------------------------------------------------------------


def test_second_render_changes_nothing(lab: Path) -> None:
    out = render(lab.parent)
    recap = [line for line in out.splitlines() if line.startswith("catalyst-lab ")]
    assert recap and all("changed=0" in line for line in recap), out[-3000:]


# -- cloudnative_pg ---------------------------------------------------------------------


def test_cnpg_operator_release(lab: Path) -> None:
    cnpg = bundle(lab, "cloudnative_pg")
    release = cnpg.release("cnpg")
    assert release["chart"] == "cnpg/cloudnative-pg"
    assert release["namespace"] == "cnpg-system"
    assert cnpg.values("cnpg")["crds"]["create"] is True


def test_cnpg_cluster_postgres17_pgvector(lab: Path) -> None:
    spec = bundle(lab, "cloudnative_pg").get("Cluster", "aistack-pg")["spec"]
    assert spec["instances"] == 1
    image = spec["imageName"]
    assert image.startswith("ghcr.io/cloudnative-pg/postgresql:17")
    assert "standard" in image.rsplit(":", 1)[1]
    assert spec["storage"] == {"size": "20Gi", "storageClass": "longhorn"}
    initdb = spec["bootstrap"]["initdb"]
    assert initdb["database"] == "app" and initdb["owner"] == "app"
    assert "CREATE EXTENSION IF NOT EXISTS vector;" in initdb["postInitApplicationSQL"]
    assert all(isinstance(v, str) for v in spec["postgresql"]["parameters"].values())


def test_cnpg_mlflow_database_and_role(lab: Path) -> None:
    cnpg = bundle(lab, "cloudnative_pg")
    roles = cnpg.get("Cluster", "aistack-pg")["spec"]["managed"]["roles"]
    assert {
        "name": "mlflow",
        "ensure": "present",
        "login": True,
        "passwordSecret": {"name": "mlflow-db-credentials"},
    } in roles
    db = cnpg.get("Database", "aistack-pg-mlflow")["spec"]
    assert db == {
        "name": "mlflow",
        "owner": "mlflow",
        "ensure": "present",
        "cluster": {"name": "aistack-pg"},
    }
    assert {
        "name": "mlflow-db-credentials",
        "namespace": "ai-stack",
        "keys": ["username", "password"],
        "source": "existing",
    } in cnpg.required_secrets()
    monitor = cnpg.get("PodMonitor", "aistack-pg")["spec"]
    assert monitor["selector"]["matchLabels"]["cnpg.io/cluster"] == "aistack-pg"


# -- kube_prometheus_stack --------------------------------------------------------------


def test_prometheus_selects_all_monitors(lab: Path) -> None:
    kps = bundle(lab, "kube_prometheus_stack")
    spec = kps.values("kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    for key in ("serviceMonitor", "podMonitor", "rule", "probe"):
        assert spec[f"{key}SelectorNilUsesHelmValues"] is False
    assert spec["serviceMonitorNamespaceSelector"] == {}
    assert spec["enableOTLPReceiver"] is True
    storage = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert storage["storageClassName"] == "longhorn"


def test_grafana_admin_from_secret_and_sidecar(lab: Path) -> None:
    kps = bundle(lab, "kube_prometheus_stack")
    grafana = kps.values("kube-prometheus-stack")["grafana"]
    assert grafana["admin"]["existingSecret"] == "grafana-admin"
    assert "adminPassword" not in grafana
    assert grafana["sidecar"]["dashboards"]["label"] == "grafana_dashboard"
    assert grafana["sidecar"]["dashboards"]["labelValue"] == "1"


def test_dcgm_dashboard_configmap(lab: Path) -> None:
    cm = bundle(lab, "kube_prometheus_stack").get("ConfigMap", "grafana-dashboard-nvidia-dcgm")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = cm["data"].values()
    dashboard = json.loads(content)
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_FB_USED"):
        assert metric in exprs


def test_dcgm_service_monitor(lab: Path) -> None:
    sm = bundle(lab, "kube_prometheus_stack").get("ServiceMonitor", "nvidia-dcgm-exporter")
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["gpu-operator"]}
    assert sm["spec"]["selector"]["matchLabels"] == {"app": "nvidia-dcgm-exporter"}
    assert sm["spec"]["endpoints"][0]["port"] == "gpu-metrics"
    gpu = bundle(lab, "gpu_operator").values("gpu-operator")
    assert gpu["dcgmExporter"]["enabled"] is True
    assert gpu["dcgmExporter"]["serviceMonitor"]["enabled"] is False  # not scraped twice


# -- opentelemetry_collector ------------------------------------------------------------


def test_otel_collector_otlp_ports_and_pipelines(lab: Path) -> None:
    values = bundle(lab, "opentelemetry_collector").values("otel-collector")
    assert values["mode"] == "deployment"
    assert values["image"]["repository"].endswith("otel/opentelemetry-collector-k8s")
    assert values["image"]["tag"] not in ("", "latest")
    ports = values["ports"]
    assert (ports["otlp"]["containerPort"], ports["otlp"]["servicePort"]) == (4317, 4317)
    assert (ports["otlp-http"]["containerPort"], ports["otlp-http"]["servicePort"]) == (4318, 4318)
    config = values["config"]
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    metrics = config["service"]["pipelines"]["metrics"]
    assert metrics["exporters"] == ["otlphttp/prometheus"]
    endpoint = config["exporters"]["otlphttp/prometheus"]["metrics_endpoint"]
    assert endpoint == (
        "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
        "/api/v1/otlp/v1/metrics"
    )


# -- mlflow -----------------------------------------------------------------------------


def test_mlflow_backend_from_existing_secret(lab: Path) -> None:
    mlflow = bundle(lab, "mlflow")
    backend = mlflow.values("mlflow")["backendStore"]
    assert backend["postgres"]["enabled"] is True
    assert backend["postgres"]["host"] == "aistack-pg-rw.ai-stack.svc.cluster.local"
    assert backend["postgres"]["database"] == "mlflow"
    assert backend["postgres"]["password"] == ""
    assert backend["existingDatabaseSecret"] == {
        "name": "mlflow-db-credentials",
        "usernameKey": "username",
        "passwordKey": "password",
    }
    assert mlflow.required_secrets()[0]["name"] == "mlflow-db-credentials"
    assert mlflow.get("PersistentVolumeClaim", "mlflow-artifacts")["spec"]["storageClassName"] == (
        "longhorn"
    )


def test_no_plain_password_anywhere(lab: Path) -> None:
    for component in lab.iterdir():
        b = Bundle(component)
        assert "Secret" not in b.kinds(), component.name
        for line in b.text().splitlines():
            key, _, value = line.strip().partition(":")
            if "password" in key.lower() and not key.lower().endswith(("key", "secret")):
                assert value.strip() in ("", "''", '""'), f"{component.name}: {line}"


# -- invalid settings fail before anything is rendered -----------------------------------


@pytest.mark.parametrize(
    ("setting", "variable"),
    [
        ('{"cloudnative_pg_instances": 0}', "cloudnative_pg_instances"),
        ('{"cloudnative_pg_storage_size": "20GB"}', "cloudnative_pg_storage_size"),
        (
            '{"cloudnative_pg_postgres_image_tag": "17.6-minimal-trixie"}',
            "cloudnative_pg_postgres_image_tag",
        ),
        ('{"mlflow_artifacts_storage_size": "big"}', "mlflow_artifacts_storage_size"),
    ],
)
def test_invalid_data_settings_fail_early(tmp_path: Path, setting: str, variable: str) -> None:
    with pytest.raises(RenderError) as failure:
        render(tmp_path, setting, playbooks=("playbooks/preflight.yml", "playbooks/data.yml"))
    assert variable in str(failure.value)
    assert not (tmp_path / "catalyst-lab" / variable.split("_")[0]).exists()
    assert not (tmp_path / "catalyst-lab" / "mlflow").exists()


@pytest.mark.parametrize(
    ("setting", "variable"),
    [
        (
            '{"kube_prometheus_stack_prometheus_storage_size": "-5Gi"}',
            "kube_prometheus_stack_prometheus_storage_size",
        ),
        (
            '{"opentelemetry_collector_otlp_http_port": 4317}',
            "opentelemetry_collector_otlp_http_port",
        ),
    ],
)
def test_invalid_observability_settings_fail_early(
    tmp_path: Path, setting: str, variable: str
) -> None:
    with pytest.raises(RenderError) as failure:
        render(
            tmp_path, setting, playbooks=("playbooks/preflight.yml", "playbooks/observability.yml")
        )
    assert variable in str(failure.value)
    assert list(tmp_path.iterdir()) == []


def test_bundle_env_helper() -> None:
    assert env_by_name({"env": [{"name": "A", "value": "1"}]}) == {"A": {"name": "A", "value": "1"}}
