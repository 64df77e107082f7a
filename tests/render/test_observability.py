"""Observability of the lab: the trace path (services -> collector -> MLflow), the monitors'
selectors, the dashboards' and alert rules' metric names, and the rules under promtool.

The catalyst-lab render is the session one (tests/render/conftest.py); the RAG service and
LocalAI, which the lab does not run, come from one small extra render of those two."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from tests.conftest import REPO
from tests.mlflow_server import MlflowServer
from tests.promql import (
    ALERT_RULES,
    METRIC_LISTS,
    agents_families,
    dashboard_exprs,
    exposed,
    listed_families,
    metric_names,
    rule_exprs,
)
from tests.render.catalyst_helpers import Bundle, env_by_name, render

RULE_TESTS = REPO / "tests/fixtures/prometheus/alert-rules.test.yml"
# Services and pods that the collection does not render itself, as their upstream sources make
# them (the monitors that target them are checked against these facts):
UPSTREAM_TARGETS = [
    # NVIDIA/gpu-operator assets/state-dcgm-exporter/0600_service.yaml
    {
        "kind": "Service",
        "what": "gpu-operator's nvidia-dcgm-exporter Service",
        "namespace": "gpu-operator",
        "labels": {"app": "nvidia-dcgm-exporter"},
        "ports": ["gpu-metrics"],
    },
    # go-skynet/helm-charts charts/local-ai: templates/service.yaml (port http) and
    # _helpers.tpl local-ai.labels (name = chart name, instance = release name)
    {
        "kind": "Service",
        "what": "the local-ai chart's Service",
        "namespace": "ai-stack",
        "labels": {
            "app.kubernetes.io/name": "local-ai",
            "app.kubernetes.io/instance": "localai",
            "app.kubernetes.io/managed-by": "Helm",
        },
        "ports": ["http"],
    },
    # CloudNativePG's instance pods (cloudnative-pg docs/src/monitoring.md: labels cnpg.io/cluster
    # and cnpg.io/podRole=instance, the exporter on container port "metrics")
    {
        "kind": "Pod",
        "what": "CloudNativePG instance pods of aistack-pg",
        "namespace": "ai-stack",
        "labels": {"cnpg.io/cluster": "aistack-pg", "cnpg.io/podRole": "instance"},
        "ports": ["postgresql", "metrics", "status"],
    },
]


def bundle(root: Path, component: str) -> Bundle:
    assert (root / component).is_dir(), f"{component} was not rendered"
    return Bundle(root / component)


@pytest.fixture(scope="session")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RAG service and LocalAI in the lab (with its Prometheus operator): their monitors;
    KServe with vLLM's tracing switched off; kube-prometheus-stack without the chart's default
    rules. One small render for the four."""
    root = tmp_path_factory.mktemp("lab-apps")
    settings = {
        "aistack_components": {"rag_pipeline": True, "localai": True},
        "aistack_deploy_only": ["rag_pipeline", "localai", "kserve", "kube_prometheus_stack"],
        "kserve_vllm_tracing": False,
        "kube_prometheus_stack_default_rules_enabled": False,
    }
    render(root, json.dumps(settings), playbooks=("playbooks/deploy.yml",))
    return root / "catalyst-lab"


# -- traces --------------------------------------------------------------------------------


def collector_otlp_http_url(lab: Path) -> str:
    """The collector's OTLP/HTTP base URL as its rendered release makes it."""
    otel = bundle(lab, "opentelemetry_collector")
    values = otel.values("otel-collector")
    namespace = otel.get("Namespace")["metadata"]["name"]
    port = values["ports"]["otlp-http"]["servicePort"]
    return f"http://{values['fullnameOverride']}.{namespace}.svc.cluster.local:{port}"


def test_collector_sends_traces_to_mlflow_never_to_debug(lab: Path) -> None:
    values = bundle(lab, "opentelemetry_collector").values("otel-collector")
    config = values["config"]
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlphttp/mlflow"]
    assert pipelines["logs"] is None  # no logs backend: no pipeline (the chart's is removed)
    assert "debug" not in config["exporters"]
    exporter = config["exporters"]["otlphttp/mlflow"]
    mlflow = bundle(lab, "mlflow")
    port = mlflow.values("mlflow")["service"]["port"]
    assert (
        exporter["traces_endpoint"] == f"http://mlflow.ai-stack.svc.cluster.local:{port}/v1/traces"
    )
    assert exporter["headers"] == {"x-mlflow-experiment-id": "0"}
    # The Host header the collector sends is one MLflow admits (MLFLOW_SERVER_ALLOWED_HOSTS).
    allowed = mlflow.values("mlflow")["extraEnvVars"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    host = urlsplit(exporter["traces_endpoint"]).netloc
    assert any(fnmatch.fnmatchcase(host, pattern) for pattern in allowed), host


def test_traced_workloads_export_to_the_collector(lab: Path, apps: Path) -> None:
    url = collector_otlp_http_url(lab)
    router = bundle(lab, "agents").get("ConfigMap", "agents-router-config")["data"]
    assert (router["OTEL_EXPORTER_OTLP_ENDPOINT"], router["OTEL_SERVICE_NAME"]) == (
        url,
        "agents-router",
    )
    assert "MLFLOW_TRACKING_URI" not in router  # once, through the collector
    beeai = bundle(lab, "kagenti").get("Deployment", "agents-beeai")
    env = env_by_name(beeai["spec"]["template"]["spec"]["containers"][0])
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == url
    assert env["OTEL_SERVICE_NAME"]["value"] == "agents-beeai"
    server = bundle(lab, "llama_stack").get("LlamaStackDistribution")["spec"]["server"]
    assert env_by_name(server["containerSpec"])["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == url
    rag = bundle(apps, "rag_pipeline").get("ConfigMap", "rag-pipeline-config")["data"]
    assert (rag["OTEL_EXPORTER_OTLP_ENDPOINT"], rag["OTEL_SERVICE_NAME"]) == (url, "rag-pipeline")
    # vLLM: on where the collector runs, with the image that carries the OpenTelemetry SDK.
    runtime = bundle(lab, "kserve").get("ServingRuntime")["spec"]["containers"][0]
    assert f"--otlp-traces-endpoint={url}/v1/traces" in runtime["args"]
    env = env_by_name(runtime)
    assert env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]["value"] == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"]["value"] == "llm-vllm"


def test_vllm_traces_with_the_vllm_otel_image_of_its_release(lab: Path, apps: Path) -> None:
    """Tracing on: the project's vllm-otel image (tests/deploy/test_images.py: what
    scripts/images.py builds) tagged with the release the role pins. Off: the upstream image, no
    flag (the upstream image would refuse it), no exporter settings."""
    kserve = yaml.safe_load((REPO / "roles/kserve/defaults/main.yml").read_text())
    release = kserve["kserve_vllm_image_tag"]
    traced = bundle(lab, "kserve").get("ServingRuntime")["spec"]["containers"][0]
    assert traced["image"] == f"ghcr.io/{kserve['kserve_vllm_otel_image_repository']}:{release}"
    plain = bundle(apps, "kserve").get("ServingRuntime")["spec"]["containers"][0]
    assert plain["image"] == f"docker.io/{kserve['kserve_vllm_image_repository']}:{release}"
    assert not any(arg.startswith("--otlp-traces-endpoint") for arg in plain["args"])
    assert not {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME"} & set(env_by_name(plain))


def test_a_span_sent_as_the_collector_sends_it_is_a_trace_in_mlflow(
    lab: Path, mlflow_server: MlflowServer
) -> None:
    """The rendered otlphttp/mlflow exporter's path, headers and compression, aimed at a real
    MLflow server (only scheme and host:port replaced): the span must come back as a trace."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    config = bundle(lab, "opentelemetry_collector").values("otel-collector")["config"]
    exporter = config["exporters"]["otlphttp/mlflow"]
    rendered = urlsplit(exporter["traces_endpoint"])
    local = urlsplit(mlflow_server.url)
    endpoint = urlunsplit((local.scheme, local.netloc, rendered.path, "", ""))
    compression = {"none": Compression.NoCompression, "gzip": Compression.Gzip}
    provider = TracerProvider(resource=Resource.create({"service.name": "obs-test"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(
                endpoint=endpoint,
                headers=exporter["headers"],
                compression=compression[exporter.get("compression", "gzip")],
            )
        )
    )
    marker = uuid.uuid4().hex
    with provider.get_tracer("obs-test").start_as_current_span("collector-path") as span:
        span.set_attribute("obs.marker", marker)
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    experiment = exporter["headers"]["x-mlflow-experiment-id"]
    found: list[dict[str, Any]] = []
    for _ in range(50):
        found = [
            t
            for t in mlflow_server.search_traces(experiment)
            if trace_id in str(t.get("trace_id", ""))
        ]
        if found:
            break
        time.sleep(0.2)
    assert found, f"trace {trace_id} not in MLflow experiment {experiment}"
    spans = mlflow_server.trace_spans(found[0]["trace_id"])
    assert [s["name"] for s in spans] == ["collector-path"]
    assert spans[0]["attributes"]["obs.marker"] == marker


# -- monitors ------------------------------------------------------------------------------


def _targets(*roots: Path) -> list[dict[str, Any]]:
    """Every Service and pod template the renders hold: kind, namespace, labels, port names."""
    found: list[dict[str, Any]] = list(UPSTREAM_TARGETS)
    runtimes = {}
    for root in roots:
        for component in sorted(p for p in root.iterdir() if p.is_dir()):
            for obj in Bundle(component).objects():
                meta = obj["metadata"]
                spec = obj.get("spec", {})
                if obj["kind"] == "Service":
                    ports = [p.get("name") for p in spec.get("ports", [])]
                    found.append(
                        {
                            "kind": "Service",
                            "what": f"{component.name}: Service {meta['name']}",
                            "namespace": meta.get("namespace"),
                            "labels": meta.get("labels", {}),
                            "ports": ports,
                        }
                    )
                elif obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
                    pod = spec["template"]
                    ports = [
                        p.get("name")
                        for c in pod["spec"].get("containers", [])
                        for p in c.get("ports", [])
                    ]
                    found.append(
                        {
                            "kind": "Pod",
                            "what": f"{component.name}: {obj['kind']} {meta['name']}",
                            "namespace": meta.get("namespace"),
                            "labels": pod["metadata"].get("labels", {}),
                            "ports": ports,
                        }
                    )
                elif obj["kind"] == "ServingRuntime":
                    runtimes[meta["name"]] = spec["containers"]
    # KServe puts the predictor's labels on its pods and the runtime's container (ports) in them.
    for root in roots:
        if not (root / "kserve").is_dir():
            continue
        objects = Bundle(root / "kserve").objects()
        for isvc in (o for o in objects if o["kind"] == "InferenceService"):
            predictor = isvc["spec"]["predictor"]
            containers = runtimes[predictor["model"]["runtime"]]
            found.append(
                {
                    "kind": "Pod",
                    "what": f"kserve: predictor pods of {isvc['metadata']['name']}",
                    "namespace": isvc["metadata"]["namespace"],
                    "labels": predictor["labels"],
                    "ports": [p.get("name") for c in containers for p in c.get("ports", [])],
                }
            )
    return found


def _monitors(*roots: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (component.name, obj)
        for root in roots
        for component in sorted(p for p in root.iterdir() if p.is_dir())
        for obj in Bundle(component).objects()
        if obj["kind"] in ("ServiceMonitor", "PodMonitor")
    ]


def test_every_monitor_selects_its_target_and_port(lab: Path, apps: Path) -> None:
    targets = _targets(lab, apps)
    monitors = _monitors(lab, apps)
    names = {obj["metadata"]["name"] for _, obj in monitors}
    # vLLM, LocalAI, the RAG service, the router, BeeAI, DCGM (Ollama exports no /metrics;
    # Llama Stack's metrics go over OTLP to the collector; the crew runs in single-node only).
    assert {
        "llm-vllm",
        "localai",
        "rag-pipeline",
        "agents-router",
        "agents-beeai",
        "nvidia-dcgm-exporter",
    } <= names, names
    for component, monitor in monitors:
        spec = monitor["spec"]
        kind = "Service" if monitor["kind"] == "ServiceMonitor" else "Pod"
        namespaces = spec.get("namespaceSelector", {}).get(
            "matchNames", [monitor["metadata"]["namespace"]]
        )
        wanted = spec["selector"]["matchLabels"]
        assert wanted, f"{component}: {monitor['metadata']['name']} selects everything"
        endpoints = spec.get("endpoints") or spec.get("podMetricsEndpoints")
        matches = [
            t
            for t in targets
            if t["kind"] == kind
            and t["namespace"] in namespaces
            and wanted.items() <= t["labels"].items()
        ]
        assert matches, f"{component}: {monitor['metadata']['name']} selects no {kind}"
        for target in matches:
            for endpoint in endpoints:
                name = monitor["metadata"]["name"]
                assert endpoint["port"] in target["ports"], (
                    f"{name}: port {endpoint['port']} not on {target['what']}"
                )


# -- dashboards and rules ------------------------------------------------------------------


def test_dashboards_ship_with_the_sidecar_label(lab: Path) -> None:
    kps = bundle(lab, "kube_prometheus_stack")
    sidecar = kps.values("kube-prometheus-stack")["grafana"]["sidecar"]["dashboards"]
    maps = {
        o["metadata"]["name"]: o
        for o in kps.objects()
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("grafana-dashboard-")
    }
    assert set(maps) == {
        f"grafana-dashboard-{n}" for n in ("nvidia-dcgm", "vllm", "rag-pipeline", "agents")
    }
    for cm in maps.values():
        assert cm["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
        (content,) = cm["data"].values()
        assert json.loads(content)["panels"]


def test_prometheus_rule_is_the_checked_rule_file(lab: Path, apps: Path) -> None:
    checked = yaml.safe_load(ALERT_RULES.read_text())
    # The lab keeps the chart's default rules: their TargetDown replaces AistackTargetDown.
    kps = bundle(lab, "kube_prometheus_stack")
    assert kps.values("kube-prometheus-stack")["defaultRules"]["create"] is True
    rule = kps.get("PrometheusRule", "aistack-alerts")
    assert rule["spec"] == {
        "groups": [g for g in checked["groups"] if g["name"] != "aistack.targets"]
    }
    alerts = {r.get("alert") for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "AistackTargetDown" not in alerts and "GPUMemoryNearlyFull" in alerts
    # Without them the whole checked file is shipped.
    bare = bundle(apps, "kube_prometheus_stack")
    assert bare.values("kube-prometheus-stack")["defaultRules"]["create"] is False
    assert bare.get("PrometheusRule", "aistack-alerts")["spec"] == checked


@pytest.mark.parametrize(
    ("dashboard", "families", "client_suffixes"),
    [
        ("vllm", "vllm.txt", True),
        ("nvidia-dcgm", "dcgm.txt", False),
        ("agents", None, True),
    ],
)
def test_dashboard_metrics_are_exported(
    dashboard: str, families: str | None, client_suffixes: bool
) -> None:
    """Every metric a panel queries is one the component exports: vLLM and DCGM against lists
    from their upstream sources (tests/fixtures/metrics), the agents against their metric
    definitions. (The RAG dashboard: tests/rag_pipeline/test_prometheus.py, real /metrics.)"""
    known = exposed(
        agents_families() if families is None else listed_families(METRIC_LISTS / families),
        client_suffixes,
    )
    for expr in dashboard_exprs(dashboard):
        names = metric_names(expr)
        assert names, expr
        assert names <= known, f"{dashboard}: {sorted(names - known)} in {expr}"


def test_rule_metrics_are_exported() -> None:
    known = (
        exposed(listed_families(METRIC_LISTS / "vllm.txt"))
        | exposed(listed_families(METRIC_LISTS / "dcgm.txt"), client_suffixes=False)
        | {"up"}
    )
    for alert, expr in rule_exprs():
        names = {n for n in metric_names(expr) if not n.startswith("rag_")}
        assert names <= known, f"{alert}: {sorted(names - known)}"


def _promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool not found: run `make tools` (Debian package prometheus)")
    return exe


def test_promtool_checks_the_rules() -> None:
    out = subprocess.run(
        [_promtool(), "check", "rules", str(ALERT_RULES)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rule_exprs())} rules found" in out.stdout


def test_promtool_unit_tests_fire_and_stay_quiet() -> None:
    # The test file names the rule file relative to itself (promtool resolves it so).
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert (RULE_TESTS.parent / tests["rule_files"][0]).resolve() == ALERT_RULES
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    assert tested == {alert for alert, _ in rule_exprs()}  # every alert has a unit test
    out = subprocess.run(
        [_promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr
