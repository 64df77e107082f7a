"""The catalyst-lab architecture, rendered once per session, checked per component.

Render mode only (no cluster): every manifest is validated strictly against Kubernetes 1.31
by the deploy mechanism; these tests check the facts that make the stack work together.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import BIN, run_playbook
from tests.mlflow_server import MLFLOW
from tests.render.catalyst_helpers import Bundle, RenderError, env_by_name, render


def bundle(lab: Path, component: str) -> Bundle:
    path = lab / component
    assert path.is_dir(), f"{component} was not rendered"
    return Bundle(path)


# -- idempotence ------------------------------------------------------------------------


# A second render reporting changed=0 is molecule's idempotence step (make test), which
# re-renders every inventory; it is not repeated here.


# -- cert_manager ------------------------------------------------------------------------


def test_cert_manager_release_with_kept_crds(lab: Path) -> None:
    cm = bundle(lab, "cert_manager")
    release = cm.release("cert-manager")
    assert release["chart"] == "jetstack/cert-manager"
    assert release["repo_url"] == "https://charts.jetstack.io"
    assert release["namespace"] == "cert-manager" and release["version"] == "v1.19.1"
    values = cm.values("cert-manager")
    assert values["crds"] == {"enabled": True, "keep": True}
    assert "installCRDs" not in values
    images = [values["image"]] + [values[p]["image"] for p in
              ("webhook", "cainjector", "acmesolver", "startupapicheck")]  # fmt: skip
    assert [i["repository"].rsplit("-", 1)[1] for i in images] == [
        "controller", "webhook", "cainjector", "acmesolver", "startupapicheck"
    ]  # fmt: skip
    assert all(i["repository"].startswith("quay.io/jetstack/cert-manager-") for i in images)
    assert {i["tag"] for i in images} == {"v1.19.1"}
    # the platform layer runs before the Prometheus operator CRDs exist
    assert values["prometheus"]["servicemonitor"]["enabled"] is False


def test_cert_manager_internal_ca_chain(lab: Path) -> None:
    cm = bundle(lab, "cert_manager")
    root = cm.get("ClusterIssuer", "aistack-ca-selfsigned")
    assert root["spec"] == {"selfSigned": {}}
    ca = cm.get("Certificate", "aistack-ca")
    assert ca["metadata"]["namespace"] == "cert-manager"  # the cluster resource namespace
    assert ca["spec"]["isCA"] is True and ca["spec"]["secretName"] == "aistack-ca"
    assert ca["spec"]["issuerRef"] == {
        "name": "aistack-ca-selfsigned",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    issuer = cm.get("ClusterIssuer", "aistack-ca")
    assert issuer["spec"] == {"ca": {"secretName": "aistack-ca"}}
    # in apply order: the root, the CA certificate it signs, the issuer reading that CA
    assert [o["metadata"]["name"] for o in cm.objects()] == [
        "aistack-ca-selfsigned", "aistack-ca", "aistack-ca"
    ]  # fmt: skip
    assert cm.required_secrets() == []  # the CA key is made in the cluster, never rendered


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


def test_mlflow_answers_the_agents_and_the_probes_only(lab: Path) -> None:
    """MLflow >= 3.5 answers only the Host headers in MLFLOW_SERVER_ALLOWED_HOSTS (403
    otherwise): the rendered list must admit the URL the agents trace to and the kubelet's
    probes (pod IP), and nothing else. Checked with MLflow's own matcher (.venv-mlflow)."""
    if not MLFLOW.exists():
        pytest.skip("run `make mlflow` first (.venv-mlflow missing)")
    allowed = bundle(lab, "mlflow").values("mlflow")["extraEnvVars"]["MLFLOW_SERVER_ALLOWED_HOSTS"]
    # Every MLflow client the lab renders reads aistack_mlflow_tracking_uri: the collector's
    # trace exporter carries it (the agents' traces go through the collector).
    otel = bundle(lab, "opentelemetry_collector").values("otel-collector")
    exporter = otel["config"]["exporters"]["otlphttp/mlflow"]
    tracking = exporter["traces_endpoint"].removesuffix("/v1/traces")
    hosts = {
        urlsplit(tracking).netloc: True,
        "mlflow.ai-stack.svc.cluster.local": True,
        "10.42.0.17:5000": True,  # a pod IP: the kubelet's probes
        "172.20.3.4:5000": True,
        "localhost:5000": True,
        "mlflow.attacker.example:5000": False,
        "172.32.0.1:5000": False,  # outside the private 172.16/12 range
    }
    check = (
        "import json, sys\n"
        "from mlflow.server.security_utils import is_allowed_host_header\n"
        "allowed, hosts = sys.argv[1].split(','), json.loads(sys.argv[2])\n"
        "print(json.dumps({h: is_allowed_host_header(allowed, h) for h in hosts}))\n"
    )
    proc = subprocess.run(
        [str(MLFLOW.parent / "python"), "-c", check, allowed, json.dumps(list(hosts))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(proc.stdout) == hosts


def test_no_plain_password_anywhere(lab: Path) -> None:
    """No Secret objects, and every password-like field is empty or an env reference."""
    for component in lab.iterdir():
        b = Bundle(component)
        assert "Secret" not in b.kinds(), component.name
        for line in b.text().splitlines():
            key, _, value = line.strip().lstrip("- ").partition(":")
            key, value = key.lower(), value.strip()
            if "password" in key and not key.endswith(("key", "secret")):
                env_ref = value.startswith("${env.") and value.endswith("}")
                assert value in ("", "''", '""') or env_ref, f"{component.name}: {line}"


# -- kserve -----------------------------------------------------------------------------


def test_kserve_charts_and_standard_mode(lab: Path) -> None:
    kserve = bundle(lab, "kserve")
    crd, resources = kserve.release("kserve-crd"), kserve.release("kserve")
    assert crd["chart"] == "oci://ghcr.io/kserve/charts/kserve-crd"
    assert resources["chart"] == "oci://ghcr.io/kserve/charts/kserve-resources"
    assert crd["version"] == resources["version"] == "v0.20.0"
    controller = kserve.values("kserve")["kserve"]["controller"]
    assert controller["deploymentMode"] == "Standard"
    assert controller["image"] == "docker.io/kserve/kserve-controller"


def test_kserve_vllm_runtime(lab: Path) -> None:
    runtime = bundle(lab, "kserve").get("ServingRuntime", "vllm-runtime")["spec"]
    assert runtime["supportedModelFormats"][0]["name"] == "vLLM"
    (container,) = runtime["containers"]
    # The lab runs the collector: tracing is on, hence the vllm-otel image of the same release.
    assert container["image"] == "ghcr.io/aistack/vllm-otel:v0.11.0"
    args = container["args"]
    assert "--model=Qwen/Qwen2.5-7B-Instruct" in args
    assert "--served-model-name=qwen2.5-7b-instruct" in args
    assert "--port=8000" in args and "--tensor-parallel-size=1" in args
    assert container["ports"][0]["containerPort"] == 8000
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}


def test_kserve_inference_service_gpu_and_hf_token(lab: Path) -> None:
    kserve = bundle(lab, "kserve")
    isvc = kserve.get("InferenceService", "llm")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    predictor = isvc["spec"]["predictor"]
    assert predictor["labels"]["llm-d.ai/inference-serving"] == "true"
    model = predictor["model"]
    assert model["modelFormat"]["name"] == "vLLM" and model["runtime"] == "vllm-runtime"
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert model["resources"]["requests"]["nvidia.com/gpu"] == "1"
    hf = env_by_name(model)["HF_TOKEN"]
    assert hf == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}},
    }
    assert {
        "name": "hf-token",
        "namespace": "ai-stack",
        "keys": ["token"],
        "source": "existing",
    } in kserve.required_secrets()
    assert predictor["tolerations"][0]["key"] == "nvidia.com/gpu"
    monitor = kserve.get("PodMonitor", "llm-vllm")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= predictor["labels"].items()


# -- llm_d ------------------------------------------------------------------------------


def test_llm_d_inference_pool(lab: Path) -> None:
    llmd = bundle(lab, "llm_d")
    pool = llmd.get("InferencePool", "vllm-pool")
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    spec = pool["spec"]
    isvc = bundle(lab, "kserve").get("InferenceService", "llm")["spec"]["predictor"]
    # The pool selects exactly the labels the vLLM pods carry, on the vLLM port.
    assert spec["selector"]["matchLabels"] == {"llm-d.ai/inference-serving": "true"}
    assert spec["selector"]["matchLabels"].items() <= isvc["labels"].items()
    assert spec["targetPorts"] == [{"number": 8000}]
    assert spec["endpointPickerRef"] == {
        "name": "vllm-pool-epp",
        "port": {"number": 9002},
        "failureMode": "FailClose",
    }


def test_llm_d_endpoint_picker(lab: Path) -> None:
    llmd = bundle(lab, "llm_d")
    deployment = llmd.get("Deployment", "vllm-pool-epp")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--pool-name") + 1] == "vllm-pool"
    assert args[args.index("--pool-namespace") + 1] == "ai-stack"
    assert args[args.index("--grpc-port") + 1] == "9002"
    service = llmd.get("Service", "vllm-pool-epp")["spec"]
    grpc = next(p for p in service["ports"] if p["name"] == "grpc-ext-proc")
    assert (grpc["port"], grpc["appProtocol"]) == (9002, "http2")
    assert service["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    config = yaml.safe_load(llmd.get("ConfigMap", "vllm-pool-epp")["data"]["default-plugins.yaml"])
    assert config["kind"] == "EndpointPickerConfig"
    assert {p["type"] for p in config["plugins"]} >= {"prefix-cache-scorer", "queue-scorer"}
    rules = llmd.get("Role", "vllm-pool-epp")["rules"]
    assert any("inferencepools" in r["resources"] for r in rules)
    assert any("pods" in r["resources"] for r in rules)


def test_llm_d_gateway_and_route(lab: Path) -> None:
    llmd = bundle(lab, "llm_d")
    gateway = llmd.get("Gateway", "llm-d-gateway")["spec"]
    assert gateway["gatewayClassName"] == "istio"
    route = llmd.get("HTTPRoute", "vllm-pool")["spec"]
    assert route["parentRefs"][0]["name"] == "llm-d-gateway"
    assert route["rules"][0]["backendRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "vllm-pool"}
    ]
    assert llmd.get("DestinationRule", "vllm-pool-epp")["spec"]["host"] == (
        "vllm-pool-epp.ai-stack.svc.cluster.local"
    )


# -- llama_stack ------------------------------------------------------------------------


def test_llama_stack_distribution_wiring(lab: Path) -> None:
    stack = bundle(lab, "llama_stack")
    lsd = stack.get("LlamaStackDistribution", "llama-stack")["spec"]["server"]
    assert lsd["containerSpec"]["port"] == 8321
    env = env_by_name(lsd["containerSpec"])
    assert env["VLLM_URL"]["value"] == "http://llm-d-gateway-istio.ai-stack.svc.cluster.local/v1"
    assert env["INFERENCE_MODEL"]["value"] == "qwen2.5-7b-instruct"
    assert env["PGVECTOR_HOST"]["value"] == "aistack-pg-rw.ai-stack.svc.cluster.local"
    assert env["PGVECTOR_DB"]["value"] == "app"
    for name, key in (("PGVECTOR_USER", "username"), ("PGVECTOR_PASSWORD", "password")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "aistack-pg-app", "key": key}
    assert lsd["userConfig"]["configMapName"] == "llama-stack-run-config"


def test_llama_stack_run_config_providers(lab: Path) -> None:
    stack = bundle(lab, "llama_stack")
    run = yaml.safe_load(stack.get("ConfigMap", "llama-stack-run-config")["data"]["run.yaml"])
    providers: dict[str, list[dict[str, Any]]] = run["providers"]
    types = {api: {p["provider_type"] for p in entries} for api, entries in providers.items()}
    assert "remote::vllm" in types["inference"]
    assert types["vector_io"] == {"remote::pgvector"}
    assert "remote::model-context-protocol" in types["tool_runtime"]
    pgvector = providers["vector_io"][0]["config"]
    assert pgvector["password"] == "${env.PGVECTOR_PASSWORD}"
    vllm = providers["inference"][0]["config"]
    assert vllm["url"] == "${env.VLLM_URL}"
    assert run["server"]["port"] == 8321


def test_llama_stack_operator_from_its_pinned_release_manifest(lab: Path) -> None:
    stack = bundle(lab, "llama_stack")
    url = (
        "https://raw.githubusercontent.com/llamastack/llama-stack-k8s-operator/"
        "v0.4.0/release/operator.yaml"
    )
    assert stack.remote() == [{"name": "llama-stack-operator", "url": url}]
    # the operator (and its CRD) comes before the distribution it reconciles
    assert stack.kustomization()["resources"][0] == url


def test_llama_stack_telemetry_exports_to_the_collector(lab: Path) -> None:
    # The collector's Service (its chart's fullnameOverride, in its release's namespace) on its
    # OTLP/HTTP port: what the llama_stack role reads from the collector role's settings.
    collector = bundle(lab, "opentelemetry_collector")
    values = collector.values("otel-collector")
    namespace = collector.release("otel-collector")["namespace"]
    port = values["ports"]["otlp-http"]["servicePort"]
    expected = f"http://{values['fullnameOverride']}.{namespace}.svc.cluster.local:{port}"
    stack = bundle(lab, "llama_stack")
    lsd = stack.get("LlamaStackDistribution", "llama-stack")["spec"]["server"]
    env = env_by_name(lsd["containerSpec"])
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == expected
    assert env["OTEL_SERVICE_NAME"]["value"] == "llama-stack"
    run = yaml.safe_load(stack.get("ConfigMap", "llama-stack-run-config")["data"]["run.yaml"])
    assert "telemetry" in run["apis"]
    (telemetry,) = run["providers"]["telemetry"]
    assert telemetry["provider_type"] == "inline::meta-reference"
    config = telemetry["config"]
    assert config["sinks"].split(",") == ["otel_trace", "otel_metric", "sqlite"]
    assert config["otel_exporter_otlp_endpoint"] == expected
    assert config["sqlite_db_path"].startswith(lsd["storage"]["mountPath"] + "/")


def _auth_and_tls(ingress: dict[str, Any], secret: str) -> None:
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    assert annotations["nginx.ingress.kubernetes.io/auth-secret"] == secret
    assert annotations["cert-manager.io/cluster-issuer"] == "aistack-ca"
    (rule,) = ingress["spec"]["rules"]
    assert ingress["spec"]["tls"] == [
        {"hosts": [rule["host"]], "secretName": f"{rule['host']}-tls"}
    ]


def test_llama_stack_ingress_behind_tls_and_basic_auth(lab: Path) -> None:
    stack = bundle(lab, "llama_stack")
    ingress = stack.get("Ingress", "llama-stack")
    _auth_and_tls(ingress, "llama-stack-basic-auth")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    port = stack.get("LlamaStackDistribution")["spec"]["server"]["containerSpec"]["port"]
    # The operator's Service for the distribution.
    assert backend == {"name": "llama-stack-service", "port": {"number": port}}
    required = {s["name"]: s["keys"] for s in stack.required_secrets()}
    assert required["llama-stack-basic-auth"] == ["auth"]


# -- llama_stack_ui ----------------------------------------------------------------------


def test_llama_stack_ui_calls_the_llama_stack_service(lab: Path) -> None:
    ui = bundle(lab, "llama_stack_ui")
    (container,) = ui.get("Deployment", "llama-stack-ui")["spec"]["template"]["spec"]["containers"]
    env = env_by_name(container)
    server = bundle(lab, "llama_stack").get("LlamaStackDistribution")
    port = server["spec"]["server"]["containerSpec"]["port"]
    namespace = server["metadata"]["namespace"]
    assert env["LLAMA_STACK_BACKEND_URL"]["value"] == (
        f"http://{server['metadata']['name']}-service.{namespace}.svc.cluster.local:{port}"
    )
    assert env["NEXTAUTH_URL"]["value"] == "https://llama-stack-ui.local"
    assert env["NEXTAUTH_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "llama-stack-ui",
        "key": "nextauth-secret",
    }
    service = ui.get("Service", "llama-stack-ui")
    assert service["spec"]["selector"].items() <= (
        ui.get("Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )


def test_llama_stack_ui_image_is_the_llama_stack_release(lab: Path, repo: Path) -> None:
    # One fact: the UI is built from the release the server runs (Containerfile ARG, image tag).
    ui = bundle(lab, "llama_stack_ui").get("Deployment")["spec"]["template"]["spec"]
    server = bundle(lab, "llama_stack").get("LlamaStackDistribution")["spec"]["server"]
    release = server["distribution"]["image"].rsplit(":", 1)[1]
    assert ui["containers"][0]["image"].endswith(f"/aistack/llama-stack-ui:{release}")
    # Built by scripts/images.py (make image, the CI workflow) with that release as its argument.
    spec = importlib.util.spec_from_file_location("aistack_images", repo / "scripts/images.py")
    assert spec and spec.loader
    images = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = images  # dataclasses resolve their module by name
    spec.loader.exec_module(images)
    (image,) = [i for i in images.IMAGES if i.name == "llama-stack-ui"]
    assert image.tag() == release
    assert image.build_arguments() == {"LLAMA_STACK_VERSION": release}
    containerfile = (repo / image.containerfile).read_text()
    assert "\nARG LLAMA_STACK_VERSION\n" in containerfile  # no second copy of the release


def test_llama_stack_ui_workload_is_hardened(lab: Path) -> None:
    ui = bundle(lab, "llama_stack_ui")
    pod = ui.get("Deployment", "llama-stack-ui")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "llama-stack-ui"
    assert pod["automountServiceAccountToken"] is False
    assert ui.get("ServiceAccount", "llama-stack-ui")["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"requests", "limits"} <= set(container["resources"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/app/.next/cache", "/tmp"}


def test_llama_stack_ui_ingress_behind_tls_and_basic_auth(lab: Path) -> None:
    ui = bundle(lab, "llama_stack_ui")
    ingress = ui.get("Ingress", "llama-stack-ui")
    _auth_and_tls(ingress, "llama-stack-ui-basic-auth")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "llama-stack-ui", "port": {"number": 8322}}
    required = {s["name"]: s["keys"] for s in ui.required_secrets()}
    assert required == {
        "llama-stack-ui": ["nextauth-secret"],
        "llama-stack-ui-basic-auth": ["auth"],
    }
    # Credentials only by reference: no Secret object is rendered.
    assert "Secret" not in ui.kinds()


# -- agents ------------------------------------------------------------------------------


def test_agents_router_calls_llama_stack(lab: Path) -> None:
    """The lab's agents use Llama Stack (the lab's API front), not the model server behind it:
    the operator's Service <name>-service on the distribution's port, OpenAI-compatible API."""
    lsd = bundle(lab, "llama_stack").get("LlamaStackDistribution")
    server = lsd["spec"]["server"]["containerSpec"]
    stack_env = env_by_name(server)
    agents = bundle(lab, "agents")
    data = agents.get("ConfigMap", "agents-router-config")["data"]
    name, namespace = lsd["metadata"]["name"], lsd["metadata"]["namespace"]
    assert data["LLM_URL"] == (
        f"http://{name}-service.{namespace}.svc.cluster.local:{server['port']}/v1/openai/v1"
    )
    assert data["LLM_MODEL"] == stack_env["INFERENCE_MODEL"]["value"]
    assert "RAG_URL" not in data  # no rag_pipeline in the lab: the answers say "no context"
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == stack_env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"]
    # Each run's trace reaches the lab's MLflow once, through the collector (not also directly).
    assert "MLFLOW_TRACKING_URI" not in data
    deployment = agents.get("Deployment", "agents-router")
    [router] = deployment["spec"]["template"]["spec"]["containers"]
    # The lab's MCP gateway is the router's tool source (the same endpoint as Llama Stack's
    # tool group); its API key is the only Secret (Llama Stack takes no key here).
    assert data["MCP_URL"] == _tool_group_uri(lab) and data["MCP_MAX_TOOL_ROUNDS"] == "2"
    gateway_key = {"name": "mcp-gateway-api-key", "key": "api_key"}
    assert router["env"] == [{"name": "MCP_API_KEY", "valueFrom": {"secretKeyRef": gateway_key}}]
    assert router["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "a2a"}
    namespace = deployment["metadata"]["namespace"]
    assert agents.required_secrets() == [
        {
            "name": "mcp-gateway-api-key",
            "namespace": namespace,
            "keys": ["api_key"],
            "source": "existing",
        }
    ]
    # Scraped by the lab's Prometheus operator through the Service's named port.
    monitor = agents.get("ServiceMonitor", "agents-router")["spec"]
    service = agents.get("Service", "agents-router")["spec"]
    assert monitor["endpoints"] == [{"port": "a2a", "path": "/metrics", "interval": "30s"}]
    assert monitor["selector"]["matchLabels"] == service["selector"]
    assert [p["name"] for p in service["ports"]] == ["a2a"]
    # The research crew is single-node's second workflow; the lab's agents are Kagenti's.
    assert not [o for o in agents.objects() if "crew" in o["metadata"]["name"]]


# -- the MCP layer: gateway, servers, Llama Stack's tool group ---------------------------

MCP_SERVERS = {"benchmark", "github", "jira", "brave"}


def _run_config_tool_group_uri(lab: Path) -> str:
    """The URI of Llama Stack's MCP tool group in the lab's run config (its MCP proxy)."""
    cm = bundle(lab, "llama_stack").get("ConfigMap", "llama-stack-run-config")
    run = yaml.safe_load(cm["data"]["run.yaml"])
    (group,) = [g for g in run["tool_groups"] if g["provider_id"] == "model-context-protocol"]
    assert group["toolgroup_id"] == "mcp::gateway"
    uri: str = group["mcp_endpoint"]["uri"]
    return uri


def _tool_group_uri(lab: Path) -> str:
    """Where Llama Stack's MCP tool group ends up in the lab: the tool group's URI is its MCP
    proxy, which forwards the path to the origin of its proxy_pass (the MCP gateway)."""
    template = bundle(lab, "llama_stack").get("ConfigMap", "llama-stack-mcp-proxy")["data"][
        "default.conf.template"
    ]
    (origin,) = re.findall(r"proxy_pass (\S+);", template)
    return origin + urlsplit(_run_config_tool_group_uri(lab)).path


def test_llama_stack_tool_calls_get_the_gateway_key_from_its_proxy(lab: Path) -> None:
    """Llama Stack 0.2.23 sends an MCP tool group no static header (tests/llama_stack shows it
    and the key arriving through this very proxy): its tool group points at the MCP proxy, a
    hardened nginx Deployment (the MCP servers' guard) that adds the gateway's key from the
    gateway's Secret, by reference only."""
    ls = bundle(lab, "llama_stack")
    service = ls.get("Service", "llama-stack-mcp-proxy")
    namespace = service["metadata"]["namespace"]
    [port] = service["spec"]["ports"]
    uri = urlsplit(_run_config_tool_group_uri(lab))
    assert (uri.hostname, uri.port, uri.path) == (
        f"llama-stack-mcp-proxy.{namespace}.svc.cluster.local", port["port"], "/mcp"
    )  # fmt: skip
    deployment = ls.get("Deployment", "llama-stack-mcp-proxy")
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [guard] = pod["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in guard["ports"]} == {"http": port["port"]}
    assert guard["image"] == "docker.io/nginxinc/nginx-unprivileged:1.29.4-alpine"
    env = env_by_name(guard)
    gateway_key = {"name": "mcp-gateway-api-key", "key": "api_key"}
    assert env["MCP_UPSTREAM_TOKEN"]["valueFrom"]["secretKeyRef"] == gateway_key
    assert env["MCP_UPSTREAM_AUTHORIZATION"]["value"] == "Bearer $(MCP_UPSTREAM_TOKEN)"
    template = ls.get("ConfigMap", "llama-stack-mcp-proxy")["data"]["default.conf.template"]
    assert 'proxy_set_header Authorization "${MCP_UPSTREAM_AUTHORIZATION}";' in template
    assert f"listen {port['port']};" in template
    # The same key Secret the gateway's clients use, required before anything is applied.
    required = {"name": "mcp-gateway-api-key", "namespace": namespace, "keys": ["api_key"]}
    assert {**required, "source": "existing"} in ls.required_secrets()
    # Nothing secret in the bundle; the filled config lives in memory only.
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["guard-conf"]["emptyDir"]["medium"] == "Memory"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert guard["securityContext"]["readOnlyRootFilesystem"] is True
    assert guard["resources"]["limits"] and guard["resources"]["requests"]


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


def test_mcp_gateway_from_its_pinned_chart_with_kuadrant(lab: Path) -> None:
    gw = bundle(lab, "mcp_gateway")
    release = gw.release("mcp-gateway")
    assert (release["chart"], release["version"]) == (
        "oci://ghcr.io/kuadrant/charts/mcp-gateway",
        "0.9.0",
    )
    assert release["namespace"] == "mcp-system"
    values = gw.values("mcp-gateway")
    # The release tags its images v<version>; the Gateway and the extension are the role's own.
    assert values["image"] == {"repository": "ghcr.io/kuadrant/mcp-gateway", "tag": "v0.9.0"}
    assert values["imageController"]["repository"] == "ghcr.io/kuadrant/mcp-controller"
    assert values["imageController"]["tag"] == "v0.9.0"
    assert values["gateway"]["create"] is False and values["mcpGatewayExtension"]["create"] is False
    kuadrant = gw.release("kuadrant-operator")
    assert (kuadrant["chart"], kuadrant["repo_url"], kuadrant["version"]) == (
        "kuadrant/kuadrant-operator", "https://kuadrant.io/helm-charts", "1.5.2"
    )  # fmt: skip
    assert gw.get("Kuadrant", "kuadrant")["metadata"]["namespace"] == kuadrant["namespace"]


def test_mcp_gateway_listens_where_llama_stack_calls_and_authenticates(lab: Path) -> None:
    """Llama Stack's tool group is the gateway: the Gateway's Istio Service, the client
    listener's hostname and port, /mcp; and that listener is behind an API-key AuthPolicy."""
    gw = bundle(lab, "mcp_gateway")
    gateway = gw.get("Gateway", "mcp-gateway")
    listeners = {entry["name"]: entry for entry in gateway["spec"]["listeners"]}
    uri = urlsplit(_tool_group_uri(lab))
    name, namespace = gateway["metadata"]["name"], gateway["metadata"]["namespace"]
    klass = gateway["spec"]["gatewayClassName"]
    assert (
        uri.hostname
        == listeners["mcp"]["hostname"]
        == f"{name}-{klass}.{namespace}.svc.cluster.local"
    )
    assert uri.port == listeners["mcp"]["port"] == listeners["mcps"]["port"]
    assert uri.path == "/mcp"
    assert listeners["mcps"]["hostname"] == "*.mcp.local"
    extension = gw.get("MCPGatewayExtension", "mcp-gateway")
    assert extension["apiVersion"] == "mcp.kuadrant.io/v1"
    assert extension["spec"]["targetRef"] == {
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name,
        "namespace": namespace, "sectionName": "mcp",
    }  # fmt: skip
    assert extension["spec"]["publicHost"] == uri.hostname
    # Authentication on the client listener, never open: Authorino API keys as bearer tokens.
    policy = gw.get("AuthPolicy")
    assert policy["metadata"]["namespace"] == namespace
    assert policy["spec"]["targetRef"] == {
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name, "sectionName": "mcp",
    }  # fmt: skip
    (auth,) = policy["spec"]["rules"]["authentication"].values()
    assert auth["apiKey"]["selector"]["matchLabels"] == {"aistack.io/mcp-gateway-api-key": "true"}
    assert auth["credentials"] == {"authorizationHeader": {"prefix": "Bearer"}}
    assert gw.required_secrets() == [
        {
            "name": "mcp-gateway-api-key",
            "namespace": "ai-stack",
            "keys": ["api_key"],
            "source": "existing",
        }
    ]  # fmt: skip


def _index(b: Bundle) -> dict[tuple[str, str], dict[str, Any]]:
    """The bundle's objects by (kind, name), parsed once."""
    return {(o["kind"], o["metadata"]["name"]): o for o in b.objects()}


def test_mcp_four_servers_registered_through_routes_to_their_guards(lab: Path) -> None:
    objects = _index(bundle(lab, "mcp_servers"))
    gateway = bundle(lab, "mcp_gateway").get("Gateway", "mcp-gateway")
    registrations = [o for (kind, _), o in objects.items() if kind == "MCPServerRegistration"]
    assert {r["metadata"]["name"] for r in registrations} == {f"mcp-{n}" for n in MCP_SERVERS}
    prefixes = [r["spec"]["prefix"] for r in registrations]
    assert sorted(prefixes) == sorted(f"{n}_" for n in MCP_SERVERS)
    for registration in registrations:
        assert registration["apiVersion"] == "mcp.kuadrant.io/v1"
        target = registration["spec"]["targetRef"]
        assert (target["group"], target["kind"]) == ("gateway.networking.k8s.io", "HTTPRoute")
        route = objects["HTTPRoute", target["name"]]
        assert route["spec"]["parentRefs"] == [{
            "group": "gateway.networking.k8s.io", "kind": "Gateway",
            "name": gateway["metadata"]["name"], "namespace": gateway["metadata"]["namespace"],
            "sectionName": "mcps",
        }]  # fmt: skip
        (host,) = route["spec"]["hostnames"]
        assert host.endswith(".mcp.local")
        # the servers' namespace may attach routes to that listener
        (mcps,) = [entry for entry in gateway["spec"]["listeners"] if entry["name"] == "mcps"]
        allowed = mcps["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]
        assert route["metadata"]["namespace"] in allowed["values"]
        (backend,) = route["spec"]["rules"][0]["backendRefs"]
        service = objects["Service", backend["name"]]
        (port,) = service["spec"]["ports"]
        assert backend["port"] == port["port"]
        deployment = objects["Deployment", backend["name"]]
        pod = deployment["spec"]["template"]
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        # The Service reaches the guard, which forwards to the server on the pod's loopback.
        by_name = {c["name"]: c for c in _containers(deployment)}
        guard_port = {p["name"]: p["containerPort"] for p in by_name["guard"]["ports"]}
        assert port["targetPort"] == "http" and guard_port["http"] == port["port"]
        template = objects["ConfigMap", backend["name"] + "-guard"]["data"]["default.conf.template"]
        server_port = by_name["server"]["ports"][0]["containerPort"]
        assert f"proxy_pass http://127.0.0.1:{server_port};" in template
        # With API-key auth the guard admits only the gateway key (what the broker sends too).
        assert '"Bearer ${MCP_GATEWAY_API_KEY}"' in template
        assert registration["spec"]["credentialRef"] == {
            "name": "mcp-gateway-api-key",
            "key": "token",
        }


def test_mcp_servers_are_hardened_and_pinned(lab: Path) -> None:
    servers = bundle(lab, "mcp_servers")
    deployments = [o for o in servers.objects() if o["kind"] == "Deployment"]
    assert len(deployments) == len(MCP_SERVERS)
    images = set()
    for deployment in deployments:
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert (
            servers.get("ServiceAccount", spec["serviceAccountName"])[
                "automountServiceAccountToken"
            ]
            is False
        )
        for container in spec["containers"]:
            images.add(container["image"])
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert set(container["resources"]) == {"requests", "limits"}
            assert "livenessProbe" in container and "readinessProbe" in container
    assert images == {
        "ghcr.io/aistack/mcp-benchmark:0.1.0",
        "ghcr.io/github/github-mcp-server:v1.10.1",
        "ghcr.io/sooperset/mcp-atlassian:0.23.1",
        "ghcr.io/aistack/brave-search-mcp:2.1.4",
        "docker.io/nginxinc/nginx-unprivileged:1.29.4-alpine",
    }


def test_mcp_benchmark_server_contract(lab: Path) -> None:
    servers = bundle(lab, "mcp_servers")
    deployment = servers.get("Deployment", "mcp-benchmark")
    by_name = {c["name"]: c for c in _containers(deployment)}
    server = by_name["server"]
    assert server["ports"][0]["containerPort"] == 8000
    assert server["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "mcp"}
    env = env_by_name(server)
    assert env["MCP_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "mcp-benchmark-token",
        "key": "token",
    }
    # The lab's LLM as the agents see it (Llama Stack's OpenAI API), no key needed there.
    agents_llm = env_by_name(
        _containers(bundle(lab, "kagenti").get("Deployment", "agents-beeai"))[0]
    )
    assert env["LLM_BASE_URL"]["value"] == agents_llm["LLM_URL"]["value"]
    assert env["LLM_MODEL"]["value"] == agents_llm["LLM_MODEL"]["value"]
    assert "LLM_API_KEY" not in env and "RAG_URL" not in env  # the lab runs no RAG service
    # Reports on the llm_benchmark role's results volume.
    assert env["RESULTS_DIR"]["value"] == "/results"
    (mount,) = [m for m in server["volumeMounts"] if m["mountPath"] == "/results"]
    (volume,) = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    ]
    pvc = bundle(lab, "llm_benchmark").get("PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    # The guard sends the server its token: callers of the gateway never hold it.
    guard = env_by_name(by_name["guard"])
    assert guard["MCP_UPSTREAM_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "mcp-benchmark-token",
        "key": "token",
    }
    assert guard["MCP_UPSTREAM_AUTHORIZATION"]["value"] == "Bearer $(MCP_UPSTREAM_TOKEN)"


def test_mcp_credentials_only_by_reference(lab: Path) -> None:
    """Every credential of the MCP layer is a Secret reference listed in secrets.required.yaml;
    no environment variable that names a secret has a value, no token text is in the bundle."""
    from ansible_collections.aistack.platform.plugins.module_utils.k8s_validation import (
        secret_like,
    )

    servers = bundle(lab, "mcp_servers")
    required = {(s["name"], key) for s in servers.required_secrets() for key in s["keys"]}
    assert required == {
        ("mcp-benchmark-token", "token"),
        ("mcp-github-token", "token"),
        ("mcp-jira-token", "token"),
        ("mcp-brave-api-key", "api-key"),
        ("mcp-gateway-api-key", "api_key"),
        ("mcp-gateway-api-key", "token"),
    }
    referenced = set()
    for deployment in (o for o in servers.objects() if o["kind"] == "Deployment"):
        for container in _containers(deployment):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add((ref["name"], ref["key"]))
                else:
                    assert not secret_like(var["name"]), var
    registrations = [o for o in servers.objects() if o["kind"] == "MCPServerRegistration"]
    referenced |= {
        (r["spec"]["credentialRef"]["name"], r["spec"]["credentialRef"]["key"])
        for r in registrations
    }
    assert referenced == required
    jira = env_by_name(_containers(servers.get("Deployment", "mcp-jira"))[0])
    assert jira["JIRA_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "mcp-jira-token",
        "key": "token",
    }
    assert jira["IGNORE_HEADER_AUTH"]["value"] == "true"  # the env credential, never the caller's
    text = "\n".join(
        bundle(lab, c).text() for c in ("mcp_gateway", "mcp_servers", "llama_stack", "kagenti")
    )
    for pattern in (
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"github_pat_",
        r"Bearer [A-Za-z0-9._~+/-]{12,}",
    ):
        assert not re.search(pattern, text), pattern


def test_mcp_credentials_from_vault_are_never_rendered_or_printed(
    lab: Path, tmp_path: Path
) -> None:
    """mcp_servers_secrets_source=vault: the values come from an ansible-vault encrypted vars
    file; the bundle lists the same Secrets (the servers' from vault) and neither the bundle nor
    the play's output contains a value."""
    required = bundle(lab, "mcp_servers").required_secrets()
    values = {
        s["name"]: {key: f"vault-{s['name']}-{key}-{i}-e3b0c442" for i, key in enumerate(s["keys"])}
        for s in required
    }
    password = tmp_path / "vault-pass"
    password.write_text("test-vault-password\n")
    secrets_file = tmp_path / "mcp-secrets.yml"
    secrets_file.write_text(
        yaml.safe_dump({"mcp_servers_secrets_source": "vault", "mcp_servers_secret_values": values})
    )
    subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password),
         str(secrets_file)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert "$ANSIBLE_VAULT" in secrets_file.read_text()
    proc = run_playbook(
        "playbooks/deploy.yml", "-i", "inventories/catalyst-lab",
        "-e", "aistack_deploy_mode=render", "-e", "aistack_embedded_enabled=false",
        "-e", f"aistack_build_root={tmp_path / 'build'}",
        "-e", json.dumps({"aistack_deploy_only": ["mcp_servers"]}),
        "-e", f"@{secrets_file}",
        ANSIBLE_VAULT_PASSWORD_FILE=str(password),
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    servers = Bundle(tmp_path / "build" / "catalyst-lab" / "mcp_servers")
    listed = servers.required_secrets()
    assert {(s["name"], tuple(s["keys"])) for s in listed} == {
        (s["name"], tuple(s["keys"])) for s in required
    }
    # The gateway's key stays the gateway's existing Secret; every server credential is Vault's.
    gateway_key = "mcp-gateway-api-key"
    assert {s["name"]: s["source"] for s in listed} == {
        s["name"]: "existing" if s["name"] == gateway_key else "vault" for s in required
    }
    text = "\n".join(p.read_text() for p in servers.root.rglob("*") if p.is_file())
    leaked = [v for keys in values.values() for v in keys.values() if v in text or v in out]
    assert not leaked, leaked


def test_mcp_custom_resources_are_checked_against_their_crds(lab: Path) -> None:
    """The registered fields of the MCP kinds are their CRDs' required ones, enums, patterns."""
    from ansible_collections.aistack.platform.plugins.module_utils.k8s_validation import (
        ManifestValidator,
    )

    validator = ManifestValidator("1.31")
    gw, servers = bundle(lab, "mcp_gateway"), bundle(lab, "mcp_servers")
    rendered = [gw.get("AuthPolicy"), gw.get("MCPGatewayExtension"), gw.get("Kuadrant")]
    rendered += [o for o in servers.objects() if o["kind"] == "MCPServerRegistration"]
    assert all(validator.validate(obj) == [] for obj in rendered)
    registration = json.loads(json.dumps(servers.get("MCPServerRegistration", "mcp-github")))
    registration["spec"]["prefix"] = "GitHub-"
    del registration["spec"]["targetRef"]["name"]
    assert validator.validate(registration) == [
        "spec.targetRef.name: required by the MCPServerRegistration CRD",
        "spec.prefix: 'GitHub-' does not match ^[a-z0-9][a-z0-9_]*$"
        " (the MCPServerRegistration CRD)",
    ]
    policy = json.loads(json.dumps(gw.get("AuthPolicy")))
    policy["spec"]["targetRef"]["kind"] = "Service"
    assert validator.validate(policy) == [
        "spec.targetRef.kind: 'Service' is not one of HTTPRoute, GRPCRoute, Gateway"
        " (the AuthPolicy CRD)"
    ]
    extension = json.loads(json.dumps(gw.get("MCPGatewayExtension")))
    del extension["spec"]["targetRef"]["sectionName"]
    assert validator.validate(extension) == [
        "spec.targetRef.sectionName: required by the MCPGatewayExtension CRD"
    ]


# Both roles' validation in one short playbook (each entry point on its own, nothing rendered):
# the INVALID cases below run the whole preflight, about 30 s each on two busy cores.
MCP_VALIDATE = """
- hosts: localhost
  gather_facts: false
  tasks:
    - block:
        - ansible.builtin.include_role: {name: aistack.platform.mcp_gateway, tasks_from: validate}
      rescue:
        - ansible.builtin.debug: {msg: REFUSED mcp_gateway}
    - block:
        - ansible.builtin.include_role: {name: aistack.platform.mcp_servers, tasks_from: validate}
      rescue:
        - ansible.builtin.debug: {msg: REFUSED mcp_servers}
"""


def test_mcp_invalid_settings_are_refused_with_every_reason(tmp_path: Path) -> None:
    playbook = tmp_path / "validate.yml"
    playbook.write_text(MCP_VALIDATE)
    wiki = {
        "name": "Wiki",
        "image_registry": "ghcr.io",
        "image_repository": "example/wiki-mcp",
        "image_tag": "latest",
        "port": 8090,
        "prefix": "Wiki-",
        "env": {"WIKI_TOKEN": "abc"},
        "resources": {"requests": {"cpu": "10m"}, "limits": {"cpu": "1"}},
    }
    settings = {
        # OIDC without an issuer: the gateway is never left open.
        "aistack_mcp_gateway_auth_mode": "oidc",
        "mcp_gateway_chart_version": "latest",
        "mcp_servers_jira_enabled": True,
        "mcp_servers_extra": [wiki],
    }
    proc = run_playbook(str(playbook), "-e", json.dumps(settings))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, out[-3000:]
    assert "REFUSED mcp_gateway" in out and "REFUSED mcp_servers" in out
    for message in (
        'mcp_gateway_chart_version must be a release such as 0.9.0, got "latest"',
        "aistack_mcp_gateway_auth_mode oidc needs mcp_gateway_oidc_issuer_url",
        "aistack_mcp_gateway_auth_mode: none is the explicit opt-out",
        "mcp_servers_jira_url must be the https URL of the Jira site",
        "mcp_servers_jira_username (the account e-mail) is required",
        'mcp_servers: name must be a DNS label of at most 53 characters, got "Wiki"',
        'mcp_servers[Wiki]: image_tag must be pinned, not "latest"',
        "every server needs a port 1-65535 other than the guard port 8090",
        'prefix must match ^[a-z0-9][a-z0-9_]*$ (the MCPServerRegistration CRD), got "Wiki-"',
        "mcp_servers: env WIKI_TOKEN looks like a secret; use secret_env (a Secret key)",
    ):
        assert message in out, message


# -- gateway_api -------------------------------------------------------------------------


def test_gateway_api_and_inference_extension_crds(lab: Path) -> None:
    gw = bundle(lab, "gateway_api")
    assert gw.remote() == [
        {
            "name": "gateway-api-crds",
            "url": "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
            "v1.4.0/standard-install.yaml",
        },
        {
            "name": "inference-extension-crds",
            "url": "https://github.com/kubernetes-sigs/gateway-api-inference-extension/"
            "releases/download/v1.0.1/manifests.yaml",
        },
    ]
    assert gw.kustomization()["resources"] == [m["url"] for m in gw.remote()]


def test_gateway_api_istio_provider_with_inference_extension(lab: Path) -> None:
    gw = bundle(lab, "gateway_api")
    base, istiod = gw.release("istio-base"), gw.release("istiod")
    assert (base["chart"], istiod["chart"]) == ("base", "istiod")
    assert (
        base["repo_url"]
        == istiod["repo_url"]
        == "https://istio-release.storage.googleapis.com/charts"
    )
    assert base["version"] == istiod["version"] == "1.28.0"
    assert base["namespace"] == istiod["namespace"] == "istio-system"
    values = gw.values("istiod")
    assert values["pilot"]["env"]["ENABLE_GATEWAY_API_INFERENCE_EXTENSION"] == "true"
    assert values["global"] == {"hub": "docker.io/istio", "tag": "1.28.0"}
    # llm-d's Gateway uses the class that istiod creates
    gateway = bundle(lab, "llm_d").get("Gateway")
    assert gateway["spec"]["gatewayClassName"] == "istio"


def test_gateway_api_without_a_provider(tmp_path: Path) -> None:
    # The deploy play on its own, narrowed to one component of the catalogue.
    only = '{"aistack_deploy_only": ["gateway_api"]}'
    render(tmp_path, "gateway_api_provider=none", only, playbooks=("playbooks/deploy.yml",))
    gw = Bundle(tmp_path / "catalyst-lab" / "gateway_api")
    assert len(gw.remote()) == 2
    assert not (gw.root / "helm").exists()
    assert [p.name for p in (tmp_path / "catalyst-lab").iterdir()] == ["gateway_api"]


def test_deploy_only_a_layer(tmp_path: Path) -> None:
    only = '{"aistack_deploy_only": ["data"]}'
    out = render(tmp_path, only, playbooks=("playbooks/deploy.yml",))
    # The data layer of the catalogue, as the lab enables it (qdrant is single-node only).
    assert sorted(p.name for p in (tmp_path / "catalyst-lab").iterdir()) == [
        "cloudnative_pg",
        "mlflow",
    ]
    assert "data / cloudnative_pg" in out


def test_deploy_only_rejects_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(RenderError) as failure:
        render(tmp_path, '{"aistack_deploy_only": ["databases"]}')
    assert "aistack_deploy_only names no layer or component: databases" in " ".join(
        str(failure.value).split()
    )


# -- kagenti ------------------------------------------------------------------------------


def _agent(b: Bundle, name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return b.get("Deployment", name), b.get("Service", name), b.get("AgentRuntime", name)


def test_kagenti_operator_from_its_pinned_chart(lab: Path) -> None:
    kagenti = bundle(lab, "kagenti")
    release = kagenti.release("kagenti-operator")
    assert release["chart"] == "oci://ghcr.io/kagenti/kagenti-operator/kagenti-operator-chart"
    assert release["version"] == "0.2.0-rc.8"
    values = kagenti.values("kagenti-operator")
    image = values["controllerManager"]["container"]["image"]
    assert image["repository"] == "ghcr.io/kagenti/kagenti-operator/kagenti-operator"
    assert image["tag"] == "0.2.0-rc.8"
    # CRDs from the chart, kept on removal; no AuthBridge injection without SPIRE/Keycloak.
    assert values["crd"] == {"enable": True, "keep": True}
    assert values["featureGates"]["globalEnabled"] is False


def test_kagenti_declares_the_agents_roles_router(lab: Path) -> None:
    """One router in the lab: the agents role runs it, Kagenti declares it (no second copy)."""
    kagenti = bundle(lab, "kagenti")
    workloads = [o for o in kagenti.objects() if o["kind"] in ("Deployment", "Service")]
    assert {o["metadata"]["name"] for o in workloads} == {"agents-beeai"}  # the BeeAI agent only
    runtime = kagenti.get("AgentRuntime", "agents-router")
    assert runtime["spec"] == {
        "type": "agent",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "agents-router"},
    }
    agents = bundle(lab, "agents")
    deployment = agents.get("Deployment", runtime["spec"]["targetRef"]["name"])
    assert runtime["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    for obj in (deployment, agents.get("Service", "agents-router")):
        labels = obj["metadata"]["labels"]
        assert labels["kagenti.io/type"] == "agent" and "protocol.kagenti.io/a2a" in labels
        assert labels["kagenti.io/framework"] == "LangGraph"
    port = agents.get("Service", "agents-router")["spec"]["ports"][0]["port"]
    assert port == 9999


def test_kagenti_runs_the_beeai_agent_by_default(lab: Path) -> None:
    """The lab's BeeAI agent: Deployment + Service + AgentRuntime from the default entry, the
    agents-beeai image serving A2A on 9999, wired to Llama Stack, keys by optional reference."""
    kagenti = bundle(lab, "kagenti")
    deployment, service, runtime = _agent(kagenti, "agents-beeai")
    assert runtime["spec"] == {
        "type": "agent",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "agents-beeai"},
    }
    assert runtime["metadata"]["namespace"] == deployment["metadata"]["namespace"] == "ai-stack"
    for obj in (deployment, service):
        labels = obj["metadata"]["labels"]
        assert labels["kagenti.io/type"] == "agent" and "protocol.kagenti.io/a2a" in labels
        assert labels["kagenti.io/framework"] == "BeeAI"
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["port"] == 9999
    container = pod["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/aistack/agents-beeai:0.1.0"
    # The image's entrypoint is aistack-agents; the BeeAI server is its beeai-serve command.
    assert "command" not in container
    assert container["args"] == ["beeai-serve", "--host", "0.0.0.0", "--port", "9999"]
    assert container["ports"][0] == {"name": "http", "containerPort": 9999, "protocol": "TCP"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"]["memory"] == "384Mi"
    env = env_by_name(container)
    server = bundle(lab, "llama_stack").get("LlamaStackDistribution")["spec"]["server"]
    port = server["containerSpec"]["port"]
    assert env["LLM_URL"]["value"] == (
        f"http://llama-stack-service.ai-stack.svc.cluster.local:{port}/v1/openai/v1"
    )
    assert (
        env["LLM_MODEL"]["value"]
        == env_by_name(server["containerSpec"])["INFERENCE_MODEL"]["value"]
    )
    assert env["A2A_PUBLIC_URL"]["value"] == "http://agents-beeai.ai-stack.svc.cluster.local:9999/"
    assert "RAG_URL" not in env  # no RAG service in the lab by default
    # The lab's MCP gateway, with its API key from the gateway's Secret (by reference).
    assert env["MCP_URL"]["value"] == _tool_group_uri(lab)
    assert env["MCP_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "mcp-gateway-api-key", "key": "api_key", "optional": True
    }  # fmt: skip
    for key in ("LLM_API_KEY", "RAG_API_KEY"):
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref["optional"] is True and ref["key"] == "api-key", key
    assert kagenti.required_secrets() == []


def test_kagenti_runs_an_agent_of_its_own_on_a2a_9999(tmp_path: Path) -> None:
    """workload deployment (the default of an entry): Deployment + Service + AgentRuntime, wired
    to Llama Stack's OpenAI API, keys by optional reference."""
    agent = {
        "name": "router2",
        "framework": "LangGraph",
        "image_repository": "aistack/agents",
        "image_tag": "0.1.0",
        "command": ["aistack-agents"],
        "args": ["serve", "--port", "9999"],
        "port": 9999,
    }
    settings = {"aistack_deploy_only": ["kagenti", "llama_stack"], "kagenti_agents": [agent]}
    render(tmp_path, json.dumps(settings), playbooks=("playbooks/deploy.yml",))
    kagenti = Bundle(tmp_path / "catalyst-lab" / "kagenti")
    deployment, service, runtime = _agent(kagenti, "router2")
    labels = deployment["metadata"]["labels"]
    assert labels["kagenti.io/type"] == "agent" and "protocol.kagenti.io/a2a" in labels
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["kagenti.io/inject"] == "disabled"
    container = pod["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/aistack/agents:0.1.0"
    assert [container["command"][0], *container["args"]][:2] == ["aistack-agents", "serve"]
    assert container["ports"][0]["containerPort"] == 9999
    assert service["spec"]["ports"][0]["port"] == 9999
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    env = env_by_name(container)
    # Llama Stack's OpenAI-compatible API, on the port the llama_stack role serves.
    stack = Bundle(tmp_path / "catalyst-lab" / "llama_stack").get("LlamaStackDistribution")
    port = stack["spec"]["server"]["containerSpec"]["port"]
    assert env["LLM_URL"]["value"] == (
        f"http://llama-stack-service.ai-stack.svc.cluster.local:{port}/v1/openai/v1"
    )
    assert env["LLM_MODEL"]["value"] == "qwen2.5-7b-instruct"
    assert "RAG_URL" not in env  # the lab runs no RAG service by default
    assert env["A2A_PUBLIC_URL"]["value"] == "http://router2.ai-stack.svc.cluster.local:9999/"
    assert env["LLM_API_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert runtime["spec"]["targetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "router2",
    }
    assert kagenti.required_secrets() == []


def test_kagenti_agent_runtime_required_fields_are_checked(lab: Path) -> None:
    """The registered fields are the CRD's required ones; each missing one is refused."""
    from ansible_collections.aistack.platform.plugins.module_utils.k8s_validation import (
        ManifestValidator,
    )

    runtime = bundle(lab, "kagenti").get("AgentRuntime", "agents-router")
    validator = ManifestValidator("1.31")
    assert validator.validate(runtime) == []
    for path in ("type", "targetRef", "targetRef.apiVersion", "targetRef.kind", "targetRef.name"):
        broken = json.loads(json.dumps(runtime))
        *parents, leaf = ["spec", *path.split(".")]
        node = broken
        for key in parents:
            node = node[key]
        del node[leaf]
        errors = validator.validate(broken)
        assert any("required by the AgentRuntime CRD" in e for e in errors), (path, errors)
    broken = json.loads(json.dumps(runtime))
    broken["spec"]["type"] = "service"
    assert validator.validate(broken) == [
        "spec.type: 'service' is not one of agent, tool (the AgentRuntime CRD)"
    ]


def test_kagenti_a_second_agent_is_one_more_entry(tmp_path: Path) -> None:
    beeai = {
        "name": "beeai",
        "framework": "BeeAI",
        "image_repository": "aistack/agents-beeai",
        "image_tag": "0.1.0",
        "port": 9999,
        "env": {"LLM_URL": "http://llm.example/v1"},
        "secret_env": [{"name": "LLM_API_KEY", "secret": "beeai-llm", "key": "api-key"}],
    }
    router = {
        "name": "router",
        "framework": "LangGraph",
        "image_repository": "aistack/agents",
        "image_tag": "0.1.0",
        "port": 9999,
    }
    settings = {
        "aistack_deploy_only": ["kagenti"],
        "aistack_image_registry": "mirror.lab:5000",
        "kagenti_agents_mcp_url": "http://mcp-gateway.ai-stack.svc.cluster.local:8080/mcp",
        "kagenti_agents": [router, beeai],
    }
    render(tmp_path, json.dumps(settings), playbooks=("playbooks/deploy.yml",))
    kagenti = Bundle(tmp_path / "catalyst-lab" / "kagenti")
    runtimes = [o for o in kagenti.objects() if o["kind"] == "AgentRuntime"]
    assert [r["spec"]["targetRef"]["name"] for r in runtimes] == ["router", "beeai"]
    deployment, _, _ = _agent(kagenti, "beeai")
    assert deployment["metadata"]["labels"]["kagenti.io/framework"] == "BeeAI"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mirror.lab:5000/aistack/agents-beeai:0.1.0"
    env = env_by_name(container)
    assert env["MCP_URL"]["value"] == "http://mcp-gateway.ai-stack.svc.cluster.local:8080/mcp"
    assert env["LLM_URL"]["value"] == "http://llm.example/v1"  # the entry's env wins
    image = kagenti.values("kagenti-operator")["controllerManager"]["container"]["image"]
    assert image["repository"].startswith("mirror.lab:5000/")
    # A Secret reference that is not optional must exist before apply.
    assert kagenti.required_secrets() == [
        {"name": "beeai-llm", "namespace": "ai-stack", "keys": ["api-key"], "source": "existing"}
    ]


# -- invalid settings fail before anything is rendered -----------------------------------

# One run per role: a role's validation reports every invalid setting at once.
INVALID: dict[str, tuple[str, str, dict[str, Any], list[str]]] = {
    "gateway_api": (
        "platform",
        "gateway_api",
        {"gateway_api_version": "main", "gateway_api_crds_checksum": "deadbeef"},
        [
            'gateway_api_version must be a release such as v1.4.0, got "main"',
            "the CRD checksums must be empty or <algorithm>:<hex digest>",
        ],
    ),
    "gateway_api provider": (
        "platform",
        "gateway_api",
        {"gateway_api_provider": "nginx"},
        ["value of gateway_api_provider must be one of: istio, none, got: nginx"],
    ),
    "cert_manager": (
        "platform",
        "cert_manager",
        {
            "cert_manager_image_tag": "latest",
            "cert_manager_internal_ca_issuer": "Internal_CA",
            "cert_manager_internal_ca_duration": "10 years",
        },
        [
            'cert_manager_image_tag must be pinned, not "latest"',
            'cert_manager_internal_ca_issuer must be a DNS label, got "Internal_CA"',
            "cert_manager_internal_ca_duration and cert_manager_internal_ca_renew_before",
        ],
    ),
    "cloudnative_pg": (
        "data",
        "cloudnative_pg",
        {
            "cloudnative_pg_instances": 0,
            "cloudnative_pg_storage_size": "20GB",
            "cloudnative_pg_postgres_image_tag": "16.4-minimal-trixie",
        },
        [
            "cloudnative_pg_instances must be >= 1, got 0",
            'cloudnative_pg_storage_size must be a positive size such as 20Gi, got "20GB"',
            "cloudnative_pg_postgres_image_tag must be a PostgreSQL 17 tag",
            "cloudnative_pg_postgres_image_tag must be a standard image",
        ],
    ),
    "mlflow": (
        "data",
        "mlflow",
        {"mlflow_artifacts_storage_size": "big", "mlflow_replicas": 2},
        ["mlflow_artifacts_storage_size must be a positive size", "mlflow_replicas must be 1"],
    ),
    "kube_prometheus_stack": (
        "observability",
        "kube_prometheus_stack",
        {"kube_prometheus_stack_prometheus_storage_size": "-5Gi"},
        ["kube_prometheus_stack_prometheus_storage_size must be a positive size"],
    ),
    "opentelemetry_collector": (
        "observability",
        "opentelemetry_collector",
        {"aistack_otel_collector_otlp_http_port": 4317},
        ["aistack_otel_collector_otlp_grpc_port, aistack_otel_collector_otlp_http_port"],
    ),
    "kserve": (
        "inference",
        "kserve",
        {
            "kserve_gpu_count": 0,
            "kserve_model_id": "llama",
            "kserve_gpu_memory_utilization": 1.5,
            "kserve_vllm_otlp_traces_endpoint": "",
        },
        [
            "kserve_gpu_count must be >= 1, got 0",
            "kserve_model_id must be a Hugging Face id",
            "kserve_gpu_memory_utilization must be in (0, 1]",
            "kserve_vllm_tracing needs an OTLP/HTTP kserve_vllm_otlp_traces_endpoint",
        ],
    ),
    "llm_d": (
        "inference",
        "llm_d",
        {"llm_d_model_server_labels": {}},
        ["llm_d_model_server_labels must not be empty"],
    ),
    "llama_stack": (
        "inference",
        "llama_stack",
        {
            "llama_stack_inference_url": "llm-d-gateway:80",
            "llama_stack_otlp_endpoint": "otel-collector:4318",
        },
        [
            "llama_stack_inference_url must be an http(s) OpenAI base URL",
            "llama_stack_otlp_endpoint must be empty, none or an http(s) URL, got"
            ' "otel-collector:4318"',
        ],
    ),
    "llama_stack_ui": (
        "apps",
        "llama_stack_ui",
        {
            "llama_stack_ui_image_tag": "latest",
            "llama_stack_ui_ingress_auth": "oauth2-proxy",
            "llama_stack_ui_ingress_cluster_issuer": "",
        },
        [
            'llama_stack_ui_image_tag must be pinned, not "latest"',
            "llama_stack_ui_ingress_oauth2_proxy_url must be the oauth2-proxy http(s) URL",
            "the UI Ingress needs TLS",
        ],
    ),
    "kagenti": (
        "apps",
        "kagenti",
        {
            "kagenti_operator_chart_version": "latest",
            "kagenti_agents_mcp_url": "mcp-gateway:8080/mcp",
            "kagenti_agents": [
                {
                    "name": "Router",
                    "framework": "LangGraph",
                    "image_repository": "aistack/agents",
                    "image_tag": "latest",
                    "port": 9999,
                    "secret_env": [
                        {"name": "LLM_API_KEY", "secret": "s", "key": "k", "value": "x"}
                    ],
                },
                {"name": "beeai", "framework": "BeeAI"},  # runs here, but no image nor port
            ],
        },
        [
            'kagenti_operator_chart_version must be a release such as 0.2.0-rc.8, got "latest"',
            'kagenti_agents: name must be a DNS label, got "Router"',
            'kagenti_agents[Router]: image_tag must be pinned, not "latest"',
            "kagenti_agents: secret_env LLM_API_KEY carries a value",
            "kagenti_agents: an agent Kagenti runs (workload deployment) needs image_repository"
            " and image_tag",
            "kagenti_agents: every agent the role runs needs a port 1-65535",
            'kagenti_agents_mcp_url must be empty or an http(s) URL, got "mcp-gateway:8080/mcp"',
        ],
    ),
    "agentic_benchmark": (
        "apps",
        "agentic_benchmark",
        {
            "agentic_benchmark_travelplanner_mode": "two-stage",
            "agentic_benchmark_travelplanner_queries_path": "../etc/passwd",
            "agentic_benchmark_vendingbench_days": 0,
            "agentic_benchmark_pushgateway_url": "pushgateway:9091",
        },
        [
            "an A2A agent plans in sole-planning mode (it brings its own tools)",
            "agentic_benchmark_travelplanner_queries_path must be a path inside the data PVC",
            "agentic_benchmark_vendingbench_days must be >= 1",
            "agentic_benchmark_pushgateway_url must be an http(s) URL or empty",
        ],
    ),
}


@pytest.mark.parametrize("case", INVALID.values(), ids=INVALID.keys())
def test_invalid_settings_fail_before_rendering(
    tmp_path: Path, case: tuple[str, str, dict[str, Any], list[str]]
) -> None:
    layer, component, settings, messages = case
    with pytest.raises(RenderError) as failure:
        render(tmp_path, json.dumps(settings))
    for message in messages:
        assert message in str(failure.value)
    # Preflight validates every enabled component first: not even the platform is rendered.
    assert list(tmp_path.iterdir()) == [], f"{component} ({layer} layer)"


def test_llm_benchmark_job_sends_no_localai_key_to_the_gateway(lab: Path) -> None:
    # The lab benchmarks the llm-d gateway (aistack_llm_base_url), not LocalAI: no key.
    job = bundle(lab, "llm_benchmark").get("Job")
    (bench,) = job["spec"]["template"]["spec"]["containers"]
    assert "LLM_API_KEY" not in {e["name"] for e in bench.get("env", [])}


# -- agentic_benchmark -------------------------------------------------------------------


def test_agentic_benchmark_jobs_test_the_beeai_agent_and_llama_stack(lab: Path) -> None:
    """TravelPlanner asks the lab's BeeAI agent (Kagenti's Service, A2A 9999) and Vending-Bench
    the model behind Llama Stack, both in the agents image (roles/agents' variables), results
    on their PVC and in the lab's MLflow, hardened, no key in the manifests."""
    bench = bundle(lab, "agentic_benchmark")
    assert bench.kinds() == ["ServiceAccount", "PersistentVolumeClaim", "Job", "Job"]
    assert bench.get("ServiceAccount")["automountServiceAccountToken"] is False
    pvc = bench.get("PersistentVolumeClaim", "agentic-benchmark-results")
    jobs = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o
        for o in bench.objects()
        if o["kind"] == "Job"
    }
    assert set(jobs) == {"travelplanner", "vendingbench"}
    router = bundle(lab, "agents")
    router_pod = router.get("Deployment", "agents-router")["spec"]["template"]["spec"]
    router_env = router.get("ConfigMap", "agents-router-config")["data"]
    beeai = bundle(lab, "kagenti").get("Service", "agents-beeai")
    beeai_url = (
        f"http://{beeai['metadata']['name']}.{beeai['metadata']['namespace']}.svc.cluster.local"
        f":{beeai['spec']['ports'][0]['port']}"
    )
    for name, job in jobs.items():
        assert job["metadata"]["name"].startswith(f"agentic-benchmark-{name}-")
        spec = job["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == "agentic-benchmark"
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
        [container] = spec["containers"]
        assert container["image"] == router_pod["containers"][0]["image"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert {"requests", "limits"} <= set(container["resources"])
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert (
            env["LLM_URL"] == router_env["LLM_URL"] and env["LLM_MODEL"] == router_env["LLM_MODEL"]
        )
        # The lab's MLflow: the chart's Service (fullnameOverride, port), which it admits.
        mlflow = bundle(lab, "mlflow")
        values = mlflow.values("mlflow")
        assert env["MLFLOW_TRACKING_URI"] == (
            f"http://{values['fullnameOverride']}.{mlflow.release('mlflow')['namespace']}"
            f".svc.cluster.local:{values['service']['port']}"
        )
        assert env["BENCH_RESULTS_DIR"] == "/results"
        assert "LLM_API_KEY" not in env and "PUSHGATEWAY_URL" not in env
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        claim = pvc["metadata"]["name"]
        assert volumes["results"]["persistentVolumeClaim"]["claimName"] == claim
        assert mounts["results"]["mountPath"] == "/results" and "tmp" in volumes
        args = container["args"]
        assert args[:2] == ["bench", name]
        assert args[args.index("--run-name") + 1] == job["metadata"]["name"].removeprefix(
            "agentic-benchmark-"
        )
    tp = jobs["travelplanner"]["spec"]["template"]["spec"]
    args = tp["containers"][0]["args"]
    assert (
        args[args.index("--agent") + 1] == "a2a" and args[args.index("--a2a-url") + 1] == beeai_url
    )
    assert args[args.index("--mode") + 1] == "sole-planning"
    assert args[args.index("--database") + 1] == "/data/database"
    assert args[args.index("--queries") + 1] == "/data/validation.csv"
    data = {v["name"]: v for v in tp["volumes"]}["data"]["persistentVolumeClaim"]
    assert data == {"claimName": "travelplanner-data", "readOnly": True}
    vb = jobs["vendingbench"]["spec"]["template"]["spec"]
    vb_args = vb["containers"][0]["args"]
    assert vb_args[vb_args.index("--policy") + 1] == "llm"
    assert "data" not in {v["name"] for v in vb["volumes"]}
    assert bench.required_secrets() == []
