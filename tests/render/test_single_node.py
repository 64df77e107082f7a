"""The single-node architecture (issue 3): every row of its specification, asserted against
the objects and Helm values that `site.yml -i inventories/single-node` renders."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_playbook
from tests.render.single_node_helpers import (
    COMPONENTS,
    NAMESPACE,
    Bundle,
    containers,
    env_map,
    quantity,
    same_resources,
    single_node,
    single_node_variant,
)

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SVC = "svc.cluster.local"


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return single_node()


def resources(requests: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    return {"requests": requests, "limits": limits}


def check_resources(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for part in ("requests", "limits"):
        assert same_resources(actual[part], expected[part]), (part, actual[part], expected[part])


def container(obj: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    found = [c for c in obj["spec"]["template"]["spec"]["containers"] if name in (None, c["name"])]
    assert found, f"no container {name} in {obj['metadata']['name']}"
    return found[0]


# --- the render itself -------------------------------------------------------------------


def test_every_component_is_rendered_and_validated(bundle: Bundle) -> None:
    assert sorted(bundle.objects) == sorted(COMPONENTS)
    assert "validated against Kubernetes 1.31" in bundle.proc.stdout


# A second render reporting changed=0: molecule's idempotence step (make test) re-renders every
# inventory, this one included.


def test_workloads_live_in_ai_stack(bundle: Bundle) -> None:
    for component in ("qdrant", "localai", "ollama", "anythingllm", "rag_pipeline", "agents"):
        for obj in bundle.objects[component]:
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]
        release = bundle.releases.get(component)
        if release:
            assert release["namespace"] == NAMESPACE


# --- LocalAI -----------------------------------------------------------------------------


def test_localai_release(bundle: Bundle) -> None:
    release, values = bundle.releases["localai"], bundle.values["localai"]
    assert release["chart"] == "go-skynet/local-ai"
    assert release["repo_url"] == "https://go-skynet.github.io/helm-charts/"
    # fullnameOverride names the Deployment and Service `localai` and the PVC localai-models.
    assert values["fullnameOverride"] == "localai"
    assert values["service"] == {"type": "ClusterIP", "port": 8080}
    check_resources(
        values["resources"],
        resources(
            {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 1},
            {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1},
        ),
    )
    assert values["tolerations"] == [GPU_TOLERATION]
    assert values["deployment"]["strategy"] == {"type": "Recreate"}


def test_localai_models_pvc(bundle: Bundle) -> None:
    values = bundle.values["localai"]
    models = values["persistence"]["models"]
    assert f"{values['fullnameOverride']}-models" == "localai-models"  # chart: <fullname>-<key>
    assert models["enabled"] is True
    assert quantity(models["size"]) == quantity("50Gi")
    assert models["storageClass"] == "longhorn"
    assert models["accessModes"] == ["ReadWriteOnce"]
    assert models["globalMount"] == "/models" == values["deployment"]["modelsPath"]
    assert models["annotations"]["helm.sh/resource-policy"] == "keep"
    assert values["persistence"]["output"]["enabled"] is False


def test_localai_models_are_declarative(bundle: Bundle) -> None:
    configs = {
        name: yaml.safe_load(text)
        for name, text in bundle.values["localai"]["modelsConfigs"].items()
    }
    names = " ".join(configs).lower()
    for family in ("mistral-7b", "llama-3-8b", "phi-3"):
        assert family in names, configs.keys()
    embedders = [name for name, config in configs.items() if config.get("embeddings")]
    assert embedders == ["nomic-embed-text-v1.5"]
    for name, config in configs.items():
        assert config["name"] == name
        assert config["parameters"]["model"] == config["download_files"][0]["filename"]
        assert config["download_files"][0]["uri"].startswith("huggingface://")
        assert config["gpu_layers"] > 0


def test_localai_api_key_from_secret(bundle: Bundle) -> None:
    secret_env = bundle.values["localai"]["deployment"]["secretEnv"]
    assert secret_env == [
        {
            "name": "LOCALAI_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "localai-api-key", "key": "api-key"}},
        }
    ]
    assert {
        "name": "localai-api-key",
        "namespace": NAMESPACE,
        "keys": ["api-key"],
        "source": "existing",
    } in (bundle.secrets["localai"])


def test_localai_probes_patch_the_chart_deployment(bundle: Bundle) -> None:
    patch = bundle.get("Deployment", "localai", "localai")
    assert patch["metadata"]["annotations"]["aistack.io/patch-of"] == "helm-release/localai"
    # The selector must be the chart's, or the server-side apply would not merge.
    assert patch["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "local-ai",
        "app.kubernetes.io/instance": "localai",
    }
    main = container(patch, "localai")
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert main["startupProbe"]["httpGet"]["path"] == "/readyz"


# --- Ollama ------------------------------------------------------------------------------


def test_ollama_plain_manifests(bundle: Bundle) -> None:
    kinds = sorted(o["kind"] for o in bundle.objects["ollama"])
    assert kinds == [
        "Deployment", "Job", "Namespace", "PersistentVolumeClaim", "Service",
        "ServiceAccount", "ServiceAccount",  # the server's and the pull Job's
    ]  # fmt: skip
    assert "ollama" not in bundle.releases


def test_ollama_deployment(bundle: Bundle) -> None:
    deployment = bundle.get("Deployment", "ollama", "ollama")
    main = container(deployment, "ollama")
    check_resources(
        main["resources"],
        resources(
            {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 1},
            {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1},
        ),
    )
    assert deployment["spec"]["template"]["spec"]["tolerations"] == [GPU_TOLERATION]
    assert main["ports"] == [{"name": "http", "containerPort": 11434, "protocol": "TCP"}]
    assert main["volumeMounts"] == [{"name": "data", "mountPath": "/root/.ollama"}]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "data", "persistentVolumeClaim": {"claimName": "ollama-data"}}]


def test_ollama_service_and_pvc(bundle: Bundle) -> None:
    service = bundle.get("Service", "ollama", "ollama")
    assert service["spec"]["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(11434, "http")]
    pvc = bundle.get("PersistentVolumeClaim", "ollama-data", "ollama")
    assert pvc["spec"]["storageClassName"] == "longhorn"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert quantity(pvc["spec"]["resources"]["requests"]["storage"]) > 0


def test_ollama_models_pulled_idempotently_after_ready(bundle: Bundle) -> None:
    jobs = [o for o in bundle.objects["ollama"] if o["kind"] == "Job"]
    assert len(jobs) == 1
    job = jobs[0]
    assert re.fullmatch(r"ollama-pull-[0-9a-f]{8}", job["metadata"]["name"])
    pull = container(job)
    env = env_map(pull)
    assert env["OLLAMA_HOST"] == f"http://ollama.{NAMESPACE}.{SVC}:11434"
    models = env["MODELS"].split()
    assert any(m.startswith("tinyllama") for m in models)
    assert any(m.startswith("phi3:mini") for m in models)
    script = pull["args"][0]
    assert "until ollama list" in script  # waits for the server
    assert (
        'ollama show "$model"' in script and 'ollama pull "$model"' in script
    )  # skips present models
    assert pull["image"] == container(bundle.get("Deployment", "ollama", "ollama"))["image"]


# --- Qdrant ------------------------------------------------------------------------------


def test_qdrant_release(bundle: Bundle) -> None:
    release, values = bundle.releases["qdrant"], bundle.values["qdrant"]
    assert release["chart"] == "qdrant/qdrant"
    assert values["fullnameOverride"] == "qdrant"
    check_resources(
        values["resources"],
        resources({"cpu": "500m", "memory": "1Gi"}, {"cpu": "1", "memory": "2Gi"}),
    )
    ports = {p["name"]: p["port"] for p in values["service"]["ports"]}
    assert ports == {"http": 6333, "grpc": 6334}
    assert all(p["targetPort"] == p["port"] for p in values["service"]["ports"])


def test_qdrant_storage(bundle: Bundle) -> None:
    persistence = bundle.values["qdrant"]["persistence"]
    # The chart names its volumeClaimTemplate storageVolumeName, mounted at /qdrant/storage.
    assert persistence["storageVolumeName"] == "qdrant-storage"
    assert quantity(persistence["size"]) == quantity("20Gi")
    assert persistence["storageClassName"] == "longhorn"
    assert persistence["accessModes"] == ["ReadWriteOnce"]


def test_qdrant_api_key_from_secret(bundle: Bundle) -> None:
    assert bundle.values["qdrant"]["apiKey"] == {
        "valueFrom": {"secretKeyRef": {"name": "qdrant-api-key", "key": "api-key"}}
    }
    assert bundle.secrets["qdrant"] == [
        {
            "name": "qdrant-api-key",
            "namespace": NAMESPACE,
            "keys": ["api-key"],
            "source": "existing",
        }
    ]


# --- AnythingLLM -------------------------------------------------------------------------


def test_anythingllm_workload(bundle: Bundle) -> None:
    deployment = bundle.get("Deployment", "anythingllm", "anythingllm")
    main = container(deployment, "anythingllm")
    check_resources(
        main["resources"],
        resources({"cpu": "500m", "memory": "1Gi"}, {"cpu": "1", "memory": "2Gi"}),
    )
    service = bundle.get("Service", "anythingllm", "anythingllm")
    assert [p["port"] for p in service["spec"]["ports"]] == [3001]
    assert main["ports"][0]["containerPort"] == 3001
    pvc = bundle.get("PersistentVolumeClaim", "anythingllm-data", "anythingllm")
    assert quantity(pvc["spec"]["resources"]["requests"]["storage"]) == quantity("10Gi")
    assert pvc["spec"]["storageClassName"] == "longhorn"
    assert main["volumeMounts"] == [{"name": "storage", "mountPath": "/app/server/storage"}]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_anythingllm_wired_to_localai_and_qdrant(bundle: Bundle) -> None:
    env = env_map(container(bundle.get("Deployment", "anythingllm", "anythingllm")))
    localai = f"http://localai.{NAMESPACE}.{SVC}:8080/v1"
    assert env["LLM_PROVIDER"] == "localai"
    assert env["LOCAL_AI_BASE_PATH"] == localai
    assert env["LOCAL_AI_MODEL_PREF"] == "mistral-7b-instruct"
    assert env["EMBEDDING_ENGINE"] == "localai"
    assert env["EMBEDDING_BASE_PATH"] == localai
    assert env["EMBEDDING_MODEL_PREF"] == "nomic-embed-text-v1.5"
    assert env["VECTOR_DB"] == "qdrant"
    assert env["QDRANT_ENDPOINT"] == f"http://qdrant.{NAMESPACE}.{SVC}:6333"
    models = bundle.values["localai"]["modelsConfigs"]
    assert env["LOCAL_AI_MODEL_PREF"] in models and env["EMBEDDING_MODEL_PREF"] in models


def test_anythingllm_secrets_from_secret(bundle: Bundle) -> None:
    env = env_map(container(bundle.get("Deployment", "anythingllm", "anythingllm")))
    expected = {
        "JWT_SECRET": ("anythingllm-secrets", "JWT_SECRET"),
        "AUTH_TOKEN": ("anythingllm-secrets", "AUTH_TOKEN"),
        "SIG_KEY": ("anythingllm-secrets", "SIG_KEY"),
        "SIG_SALT": ("anythingllm-secrets", "SIG_SALT"),
        "LOCAL_AI_API_KEY": ("localai-api-key", "api-key"),
        "QDRANT_API_KEY": ("qdrant-api-key", "api-key"),
    }
    for name, (secret, key) in expected.items():
        assert env[name] == {"secretKeyRef": {"name": secret, "key": key}}, name
    required = {s["name"]: s["keys"] for s in bundle.secrets["anythingllm"]}
    assert required["anythingllm-secrets"] == ["JWT_SECRET", "AUTH_TOKEN", "SIG_KEY", "SIG_SALT"]


# --- RAG pipeline ------------------------------------------------------------------------


def test_rag_pipeline_config(bundle: Bundle) -> None:
    data = bundle.get("ConfigMap", "rag-pipeline-config", "rag_pipeline")["data"]
    assert data["LOCALAI_URL"] == f"http://localai.{NAMESPACE}.{SVC}:8080/v1"
    assert data["QDRANT_URL"] == f"http://qdrant.{NAMESPACE}.{SVC}:6333"
    assert data["EMBEDDING_MODEL"] == "nomic-embed-text-v1.5"
    assert data["LLM_MODEL"] == "mistral-7b-instruct"
    assert data["CHUNK_SIZE"] == "0"  # the embedder's window (issue #14)
    assert data["EMBEDDING_MAX_TOKENS"] == "256" and "CHUNK_OVERLAP" not in data
    assert data["EMBEDDING_STRATEGY"] == "hybrid"
    assert data["EMBEDDING_BACKEND"] == "openai"
    assert data["VECTOR_STORE"] == "qdrant"
    assert data["COLLECTION_NAME"] == "documents"
    assert data["LLM_TIMEOUT_S"] == "60"  # one deadline per LLM call
    assert data["METRICS_PUBLIC"] == "false"  # Prometheus sends the API key
    assert all(isinstance(v, str) for v in data.values())
    models = bundle.values["localai"]["modelsConfigs"]
    assert data["LLM_MODEL"] in models and data["EMBEDDING_MODEL"] in models


def test_rag_pipeline_workload(bundle: Bundle) -> None:
    deployment = bundle.get("Deployment", "rag-pipeline", "rag_pipeline")
    main = container(deployment, "rag-pipeline")
    assert main["envFrom"] == [{"configMapRef": {"name": "rag-pipeline-config"}}]
    env = env_map(main)
    assert env["API_KEY"] == {"secretKeyRef": {"name": "rag-pipeline-api-key", "key": "api-key"}}
    assert env["QDRANT_API_KEY"] == {"secretKeyRef": {"name": "qdrant-api-key", "key": "api-key"}}
    assert main["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    # /ready is cheap (no embedding, store wait <= 0.5 s): 5 s covers it during ingestion.
    assert (main["readinessProbe"]["timeoutSeconds"], main["readinessProbe"]["periodSeconds"]) == (
        5,
        10,
    )
    assert main["livenessProbe"]["failureThreshold"] == 3
    assert main["ports"][0]["containerPort"] == 8000
    check_resources(
        main["resources"],
        resources({"cpu": "250m", "memory": "512Mi"}, {"cpu": "1", "memory": "2Gi"}),
    )
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    # No volume but /tmp: originals and chunks live in the vector store.
    assert [m["mountPath"] for m in main["volumeMounts"]] == ["/tmp"]
    assert [v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]] == ["tmp"]
    service = bundle.get("Service", "rag-pipeline", "rag_pipeline")
    assert [p["port"] for p in service["spec"]["ports"]] == [8000]


# --- agents (LangGraph query router over A2A) ---------------------------------------------

AGENTS_VERSION = re.search(
    r'__version__ = "([^"]+)"',
    (Path(__file__).parents[2] / "services/agents/aistack_agents/__init__.py").read_text(),
)


def test_agents_router_wired_to_localai_and_the_rag_service(bundle: Bundle) -> None:
    data = bundle.get("ConfigMap", "agents-router-config", "agents")["data"]
    # The same LocalAI as the RAG service, with a model LocalAI serves.
    rag_config = bundle.get("ConfigMap", "rag-pipeline-config", "rag_pipeline")["data"]
    assert (
        data["LLM_URL"] == rag_config["LOCALAI_URL"] == f"http://localai.{NAMESPACE}.{SVC}:8080/v1"
    )
    assert bundle.values["localai"]["service"]["port"] == 8080
    assert data["LLM_MODEL"] == "mistral-7b-instruct" in bundle.values["localai"]["modelsConfigs"]
    # The RAG URL is the rag_pipeline Service's name and port.
    rag = bundle.get("Service", "rag-pipeline", "rag_pipeline")
    assert (
        data["RAG_URL"]
        == f"http://rag-pipeline.{NAMESPACE}.{SVC}:{rag['spec']['ports'][0]['port']}"
    )
    assert data["A2A_PORT"] == "9999" and data["A2A_HOST"] == "0.0.0.0"
    assert data["A2A_PUBLIC_URL"] == f"http://agents-router.{NAMESPACE}.{SVC}:9999/"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in data  # no collector in this architecture
    assert "MLFLOW_TRACKING_URI" not in data  # nor MLflow
    assert all(isinstance(v, str) for v in data.values())


def test_agents_router_workload(bundle: Bundle) -> None:
    deployment = bundle.get("Deployment", "agents-router", "agents")
    main = container(deployment, "router")
    assert AGENTS_VERSION
    assert main["image"] == f"ghcr.io/aistack/agents:{AGENTS_VERSION.group(1)}"
    assert main["args"] == ["serve"]
    assert main["envFrom"] == [{"configMapRef": {"name": "agents-router-config"}}]
    # Keys only by reference: LocalAI's (optional, as for the RAG service) and the RAG service's.
    env = env_map(main)
    assert env == {
        "LLM_API_KEY": {
            "secretKeyRef": {"name": "localai-api-key", "key": "api-key", "optional": True}
        },
        "RAG_API_KEY": {"secretKeyRef": {"name": "rag-pipeline-api-key", "key": "api-key"}},
    }
    assert bundle.secrets["agents"] == [
        {
            "name": "rag-pipeline-api-key",
            "namespace": NAMESPACE,
            "keys": ["api-key"],
            "source": "existing",
        }
    ]
    assert main["ports"] == [{"name": "a2a", "containerPort": 9999, "protocol": "TCP"}]
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "a2a"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "a2a"}
    check_resources(
        main["resources"],
        resources({"cpu": "100m", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi"}),
    )
    pod = deployment["spec"]["template"]["spec"]
    assert (
        pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    )
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    service = bundle.get("Service", "agents-router", "agents")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(9999, "a2a")]
    assert (
        service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    # No Prometheus operator here (no ServiceMonitor CRD); the example Jobs are off by default.
    # Single-node draws both workflows: the router, then the research crew.
    assert [(o["kind"], o["metadata"]["name"]) for o in bundle.objects["agents"]] == [
        ("Namespace", NAMESPACE),
        ("ServiceAccount", "agents-router"),
        ("ConfigMap", "agents-router-config"),
        ("Service", "agents-router"),
        ("Deployment", "agents-router"),
        ("ServiceAccount", "agents-crew"),
        ("ConfigMap", "agents-crew-config"),
        ("Service", "agents-crew"),
        ("Deployment", "agents-crew"),
    ]


def test_agents_crew_wired_like_the_router(bundle: Bundle) -> None:
    """The CrewAI crew's A2A server: image agents-crew, `serve --workflow crew`, the router's
    LLM and RAG wiring and keys, its own card URL; probes, resources, non-root."""
    router = bundle.get("ConfigMap", "agents-router-config", "agents")["data"]
    data = bundle.get("ConfigMap", "agents-crew-config", "agents")["data"]
    for key in ("LLM_URL", "LLM_MODEL", "RAG_URL", "RAG_TOP_N", "A2A_HOST", "A2A_PORT"):
        assert data[key] == router[key], key
    assert data["AGENT_WORKFLOW"] == "crew" and "AGENT_WORKFLOW" not in router
    assert data["A2A_PUBLIC_URL"] == f"http://agents-crew.{NAMESPACE}.{SVC}:9999/"
    assert data["XDG_DATA_HOME"] == "/tmp"  # CrewAI's SQLite file, on the writable emptyDir
    assert "QUALITY_THRESHOLD" not in data and "MCP_URL" not in data
    deployment = bundle.get("Deployment", "agents-crew", "agents")
    crew = container(deployment, "crew")
    assert AGENTS_VERSION
    assert crew["image"] == f"ghcr.io/aistack/agents-crew:{AGENTS_VERSION.group(1)}"
    assert crew["args"] == ["serve", "--workflow", "crew"]
    assert crew["envFrom"] == [{"configMapRef": {"name": "agents-crew-config"}}]
    assert env_map(crew) == env_map(container(bundle.get("Deployment", "agents-router", "agents")))
    assert crew["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "a2a"}
    assert crew["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "a2a"}
    assert {"name": "tmp", "mountPath": "/tmp"} in crew["volumeMounts"]
    check_resources(
        crew["resources"],
        resources({"cpu": "200m", "memory": "512Mi"}, {"cpu": "2", "memory": "2Gi"}),
    )
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert crew["securityContext"]["readOnlyRootFilesystem"] is True
    service = bundle.get("Service", "agents-crew", "agents")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(9999, "a2a")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert labels["app.kubernetes.io/component"] == "research-crew"
    # The two Services select only their own pods.
    router_labels = bundle.get("Deployment", "agents-router", "agents")["spec"]["template"]
    assert not service["spec"]["selector"].items() <= router_labels["metadata"]["labels"].items()


def test_agents_job_ingress_and_another_model_server(tmp_path: Path) -> None:
    """The options: another OpenAI-compatible server through the global, the example Job and
    the Ingress; validated like everything else (the render fails on an invalid object)."""
    from tests.render.single_node_helpers import load_bundle, render

    extra = {
        "aistack_deploy_only": ["agents"],
        "aistack_llm_base_url": f"http://ollama.{NAMESPACE}.{SVC}:11434/v1",
        "agents_llm_model": "tinyllama:1.1b",
        "agents_job_enabled": True,
        "agents_crew_job_enabled": True,
        # The gateway's globals: the router and the crew both get its URL and key.
        "aistack_mcp_gateway_url": "http://mcp-gateway.ai-stack.svc.cluster.local:8080/mcp",
        "aistack_mcp_gateway_api_key_secret_name": "mcp-token",
        "agents_ingress_enabled": True,
        "aistack_ingress_cluster_issuer": "lab-ca",
    }
    proc = render(tmp_path, "-e", json.dumps(extra), playbook="playbooks/deploy.yml")
    assert proc.returncode == 0, proc.stdout[-3000:]
    agents = load_bundle(tmp_path / "single-node", proc)
    assert sorted(agents.objects) == ["agents"]
    data = agents.get("ConfigMap", "agents-router-config")["data"]
    assert data["LLM_URL"] == f"http://ollama.{NAMESPACE}.{SVC}:11434/v1"
    assert data["LLM_MODEL"] == "tinyllama:1.1b"
    assert data["A2A_PUBLIC_URL"] == "https://agents.local/"  # the card announces the Ingress
    [job] = [j for j in agents.of_kind("Job") if j["metadata"]["name"].startswith("agents-router")]
    assert re.fullmatch(r"agents-router-query-[0-9a-f]{8}", job["metadata"]["name"])
    run = containers(job)[0]
    assert run["args"] == [
        "router",
        "--query",
        "How does GPU time-slicing let several models share one GPU?",
    ]
    deployment = agents.get("Deployment", "agents-router")
    assert (
        run["env"] == container(deployment)["env"]
        and run["envFrom"] == container(deployment)["envFrom"]
    )
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # The crew's example Job and its MCP server (the token by reference, checked to exist).
    crew_job = next(
        j for j in agents.of_kind("Job") if j["metadata"]["name"].startswith("agents-crew")
    )
    assert re.fullmatch(r"agents-crew-topic-[0-9a-f]{8}", crew_job["metadata"]["name"])
    crew_run = containers(crew_job)[0]
    assert crew_run["args"][:2] == ["crew", "--topic"] and crew_run["image"].endswith(
        "/aistack/agents-crew:" + AGENTS_VERSION.group(1)  # type: ignore[union-attr]
    )
    crew_config = agents.get("ConfigMap", "agents-crew-config")["data"]
    assert crew_config["MCP_URL"] == "http://mcp-gateway.ai-stack.svc.cluster.local:8080/mcp"
    assert crew_config["LLM_URL"] == f"http://ollama.{NAMESPACE}.{SVC}:11434/v1"
    assert env_map(crew_run)["MCP_API_KEY"] == {
        "secretKeyRef": {"name": "mcp-token", "key": "api_key"}  # the gateway Secret's key
    }
    # The router's MCP tools: the same gateway and key, its own round limit.
    assert data["MCP_URL"] == crew_config["MCP_URL"] and data["MCP_MAX_TOOL_ROUNDS"] == "2"
    assert env_map(run)["MCP_API_KEY"] == env_map(crew_run)["MCP_API_KEY"]
    assert "MCP_MAX_TOOL_ROUNDS" not in crew_config
    mcp_secret = {"name": "mcp-token", "namespace": NAMESPACE, "keys": ["api_key"]}
    assert mcp_secret | {"source": "existing"} in agents.secrets["agents"]
    ingress = agents.get("Ingress", "agents-router")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "agents-router", "port": {"number": 9999}}
    assert ingress["spec"]["tls"] == [{"hosts": ["agents.local"], "secretName": "agents.local-tls"}]
    text = "\n".join(p.read_text() for p in agents.root.rglob("*.yaml"))
    assert "kind: Secret\n" not in text and "stringData" not in text


# --- GPU ---------------------------------------------------------------------------------


def test_gpu_workloads_request_one_gpu_and_tolerate_the_taint(bundle: Bundle) -> None:
    localai = bundle.values["localai"]
    ollama = bundle.get("Deployment", "ollama", "ollama")
    for res, tolerations in (
        (localai["resources"], localai["tolerations"]),
        (
            container(ollama, "ollama")["resources"],
            ollama["spec"]["template"]["spec"]["tolerations"],
        ),
    ):
        assert res["limits"]["nvidia.com/gpu"] == 1
        assert res["requests"]["nvidia.com/gpu"] == 1
        assert GPU_TOLERATION in tolerations


def test_only_the_model_servers_use_gpus(bundle: Bundle) -> None:
    for obj in bundle.of_kind("Deployment"):
        if obj["metadata"]["name"] in ("ollama", "localai"):
            continue
        for c in containers(obj):
            assert "nvidia.com/gpu" not in str(c.get("resources", {})), obj["metadata"]["name"]


def test_time_slicing_configmap(bundle: Bundle) -> None:
    configmap = bundle.get("ConfigMap", "time-slicing-config", "gpu_operator")
    assert configmap["metadata"]["namespace"] == "gpu-operator"
    assert list(configmap["data"]) == ["any"]
    config = yaml.safe_load(configmap["data"]["any"])
    assert config["version"] == "v1"
    slicing = config["sharing"]["timeSlicing"]
    assert slicing["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert slicing["renameByDefault"] is False
    assert slicing["failRequestsGreaterThanOne"] is True


def test_time_slicing_wired_into_the_operator(bundle: Bundle) -> None:
    release, values = bundle.releases["gpu-operator"], bundle.values["gpu-operator"]
    assert release["chart"] == "nvidia/gpu-operator"
    assert release["namespace"] == "gpu-operator"
    assert release["repo_url"] == "https://helm.ngc.nvidia.com/nvidia"
    configmap = bundle.get("ConfigMap", "time-slicing-config", "gpu_operator")
    config = values["devicePlugin"]["config"]
    assert config["create"] is False
    assert config["name"] == configmap["metadata"]["name"]
    assert config["default"] in configmap["data"]
    assert values["driver"]["enabled"] is False
    assert values["dcgmExporter"]["enabled"] is True
    assert values["toolkit"]["enabled"] is True


# --- Ingress -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "component", "host", "port", "body_size"),
    [
        ("localai", "localai", "localai.local", 8080, "50m"),
        ("anythingllm", "anythingllm", "anythingllm.local", 3001, "100m"),
    ],
)
def test_ingress(
    bundle: Bundle, name: str, component: str, host: str, port: int, body_size: str
) -> None:
    ingress = bundle.get("Ingress", name, component)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == body_size
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "300"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "300"
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == host
    [path] = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": name, "port": {"number": port}}
    # TLS by default: the internal CA of cert-manager signs <host>-tls.
    assert annotations["cert-manager.io/cluster-issuer"] == "aistack-ca"
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": f"{host}-tls"}]


def test_ingress_controller(bundle: Bundle) -> None:
    values = bundle.values["ingress-nginx"]["controller"]
    assert values["ingressClassResource"]["name"] == "nginx"
    assert values["service"]["type"] == "NodePort"
    assert values["resources"]["limits"] and values["resources"]["requests"]


def test_only_the_specified_hosts_are_exposed(bundle: Bundle) -> None:
    hosts = sorted(r["host"] for i in bundle.of_kind("Ingress") for r in i["spec"]["rules"])
    assert hosts == ["anythingllm.local", "localai.local"]


# --- Storage -----------------------------------------------------------------------------


def test_longhorn_storage_class(bundle: Bundle) -> None:
    release, values = bundle.releases["longhorn"], bundle.values["longhorn"]
    assert (release["chart"], release["namespace"]) == ("longhorn/longhorn", "longhorn-system")
    assert values["persistence"]["defaultClass"] is True
    assert values["persistence"]["reclaimPolicy"] == "Retain"
    assert values["persistence"]["defaultClassReplicaCount"] == 1
    assert values["defaultSettings"]["defaultReplicaCount"] == 1


def test_every_pvc_uses_longhorn_read_write_once(bundle: Bundle) -> None:
    pvcs = bundle.of_kind("PersistentVolumeClaim")
    assert sorted(p["metadata"]["name"] for p in pvcs) == [
        "anythingllm-data",
        "finetune-datasets",
        "finetune-models",
        "finetune-output",
        "guidellm-results",
        "ollama-data",
    ]
    for pvc in pvcs:
        assert pvc["spec"]["storageClassName"] == "longhorn", pvc["metadata"]["name"]
        assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    # Chart-made claims: LocalAI's localai-models and Qdrant's qdrant-storage.
    localai = bundle.values["localai"]["persistence"]["models"]
    qdrant = bundle.values["qdrant"]["persistence"]
    assert (localai["storageClass"], localai["accessModes"]) == ("longhorn", ["ReadWriteOnce"])
    assert (qdrant["storageClassName"], qdrant["accessModes"]) == ("longhorn", ["ReadWriteOnce"])


# --- every workload: probes, resources, pinned images ------------------------------------


def workloads(bundle: Bundle) -> list[dict[str, Any]]:
    return [
        o for o in bundle.all_objects() if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    ]


def test_every_workload_has_probes_and_resources(bundle: Bundle) -> None:
    names = []
    for obj in workloads(bundle):
        names.append(obj["metadata"]["name"])
        for c in obj["spec"]["template"]["spec"]["containers"]:
            assert c.get("livenessProbe") and c.get("readinessProbe"), (
                obj["metadata"]["name"],
                c["name"],
            )
            if obj["metadata"].get("annotations", {}).get("aistack.io/patch-of"):
                continue  # resources of the patched chart Deployment come from the chart values
            assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
    assert sorted(names) == [
        "agents-crew",
        "agents-router",
        "anythingllm",
        "localai",
        "ollama",
        "rag-pipeline",
    ]
    qdrant = bundle.values["qdrant"]
    assert qdrant["livenessProbe"]["enabled"] and qdrant["readinessProbe"]["enabled"]
    assert qdrant["service"]["ports"][0]["checksEnabled"] is True  # probes on the HTTP port


def images(bundle: Bundle) -> list[str]:
    found = []
    for obj in bundle.all_objects():
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            found += [c["image"] for c in containers(obj) if c.get("image")]
    for name in ("localai", "qdrant"):
        image = bundle.values[name].get("image") or bundle.values[name]["deployment"]["image"]
        found.append(f"{image['repository']}:{image['tag']}")
    found.append(bundle.values["localai"]["deployment"]["prompt_templates"]["image"])
    return found


def test_images_are_pinned(bundle: Bundle) -> None:
    found = images(bundle)
    assert len(found) >= 6
    for image in found:
        repository, _, tag = image.rpartition(":")
        assert repository and "/" in repository, image
        assert tag and not tag.startswith("latest"), image


def test_charts_are_pinned_with_a_source(bundle: Bundle) -> None:
    assert sorted(bundle.releases) == [
        "cert-manager",
        "gpu-operator",
        "ingress-nginx",
        "localai",
        "longhorn",
        "qdrant",
    ]
    for release in bundle.releases.values():
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", str(release["version"])), release
        assert release["repo_url"].startswith("https://"), release


def test_llm_benchmark_job_sends_localai_api_key(bundle: Bundle) -> None:
    # LocalAI answers 401 without its key: the Job reads it from LocalAI's own Secret.
    (job,) = [o for o in bundle.objects["llm_benchmark"] if o["kind"] == "Job"]
    bench = container(job, "benchmark")
    ref = env_map(bench)["LLM_API_KEY"]["secretKeyRef"]
    secret_env = bundle.values["localai"]["deployment"]["secretEnv"]
    (localai_key,) = [e for e in secret_env if e["name"] == "LOCALAI_API_KEY"]
    localai_ref = localai_key["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == (localai_ref["name"], localai_ref["key"])
    assert ref["optional"] is True  # LocalAI may run without a key
    assert "--set api_key=$LLM_API_KEY" in bench["args"][0]


# --- the fine-tuning Job -------------------------------------------------------------------


def cli_options(args: list[str]) -> dict[str, str]:
    """--name value pairs of a command line (flags without a value left out)."""
    return {
        arg: args[i + 1]
        for i, arg in enumerate(args[:-1])
        if arg.startswith("--") and not args[i + 1].startswith("--")
    }


def finetune_job(bundle: Bundle) -> dict[str, Any]:
    (job,) = [o for o in bundle.objects["finetune"] if o["kind"] == "Job"]
    return job


def test_finetune_job_trains_on_the_gpu_below_inference(bundle: Bundle) -> None:
    job = finetune_job(bundle)
    pod = job["spec"]["template"]["spec"]
    (train,) = pod["containers"]
    assert train["name"] == "train" and "initContainers" not in pod
    assert train["image"] == "ghcr.io/aistack/finetune:" + finetune_version()
    res = train["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == 1
    assert GPU_TOLERATION in pod["tolerations"]
    # A PriorityClass of its own below the model servers (no class: priority 0), which waits
    # instead of preempting: inference evicts the Job from the shared GPU, never the reverse.
    priority = bundle.get("PriorityClass", pod["priorityClassName"], "finetune")
    assert priority["value"] < 0 and priority["globalDefault"] is False
    assert priority["preemptionPolicy"] == "Never"
    for server in (bundle.get("Deployment", "ollama", "ollama"),):
        assert "priorityClassName" not in server["spec"]["template"]["spec"]
    # Resumable: always --resume into the same output directory; an eviction is not a failure.
    args = train["args"]
    assert args[0] == "train" and "--resume" in args
    option = cli_options(args)
    assert option["--output"] == "/output/default"
    assert option["--base-model"] == "/models/Qwen2.5-0.5B-Instruct"
    assert option["--dataset"] == "/datasets/train.jsonl"
    assert int(option["--save-steps"]) >= 1
    assert job["spec"]["podFailurePolicy"]["rules"] == [
        {
            "action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
        }
    ]
    assert pod["restartPolicy"] == "Never"
    env = env_map(train)
    assert env["HF_HUB_OFFLINE"] == "1"
    assert "MLFLOW_TRACKING_URI" not in env  # no MLflow in single-node


def test_finetune_job_is_hardened_with_its_volumes(bundle: Bundle) -> None:
    job = finetune_job(bundle)
    pod = job["spec"]["template"]["spec"]
    (train,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert train["securityContext"]["readOnlyRootFilesystem"] is True
    assert train["securityContext"]["allowPrivilegeEscalation"] is False
    assert train["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    account = bundle.get("ServiceAccount", pod["serviceAccountName"], "finetune")
    assert account["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m for m in train["volumeMounts"]}
    assert mounts["/models"]["readOnly"] and mounts["/datasets"]["readOnly"]
    assert not mounts["/output"].get("readOnly") and "/tmp" in mounts
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {
        "models": "finetune-models",
        "datasets": "finetune-datasets",
        "output": "finetune-output",
    }


def finetune_version() -> str:
    from tests.conftest import REPO

    init = (REPO / "services/finetune/aistack_finetune/__init__.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', init)
    assert match
    return match.group(1)


def test_finetune_variant_model_image_mlflow_and_vllm_registration(variant: Bundle) -> None:
    job = finetune_job(variant)
    pod = job["spec"]["template"]["spec"]
    fetch, train = pod["initContainers"]
    (register,) = pod["containers"]
    # The base model from an OCI model image, copied to an emptyDir; no models PVC then.
    assert fetch["image"] == "mirror.example:5000/models/qwen2.5-0.5b-instruct:1.0"
    assert {"name": "base-model", "mountPath": "/base-model"} in fetch["volumeMounts"]
    assert "finetune-models" not in {
        p["metadata"]["name"] for p in variant.of_kind("PersistentVolumeClaim")
    }
    args = train["args"]
    assert args[args.index("--base-model") + 1] == "/base-model"
    env = env_map(train)
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.ai-stack.svc.cluster.local:5000"
    assert env["MLFLOW_TRACKING_TOKEN"]["secretKeyRef"]["name"] == "mlflow-token"
    # After training, the adapter is loaded into vLLM as a LoRA adapter.
    assert register["args"][:3] == [
        "register",
        "--vllm-url",
        "http://qwen-predictor.ai-stack.svc.cluster.local/v1",
    ]
    option = cli_options(register["args"])
    assert option["--path"] == "/adapters/default/adapter"
    assert option["--adapter-dir"] == args[args.index("--output") + 1] + "/adapter"
    assert env_map(register)["VLLM_API_KEY"]["secretKeyRef"]["name"] == "vllm-api-key"
    for container in (fetch, train, register):
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {s["name"] for s in variant.secrets["finetune"]} == {"mlflow-token", "vllm-api-key"}


def test_no_secret_values_are_rendered(bundle: Bundle) -> None:
    assert not bundle.of_kind("Secret")
    text = "\n".join(p.read_text() for p in bundle.root.rglob("*.yaml"))
    assert "stringData" not in text


# --- inventory overrides: registry mirror, chart mirror, TLS -----------------------------


@pytest.fixture(scope="module")
def variant() -> Bundle:
    return single_node_variant()


def test_rag_pipeline_service_monitor(bundle: Bundle, variant: Bundle) -> None:
    # No Prometheus operator in single-node (no CRD): none by default; the variant turns it on.
    assert not bundle.of_kind("ServiceMonitor")
    service = variant.get("Service", "rag-pipeline", "rag_pipeline")
    monitor = variant.get("ServiceMonitor", "rag-pipeline", "rag_pipeline")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # /metrics needs the API key (METRICS_PUBLIC false): the scrape sends the service's own.
    deployment = variant.get("Deployment", "rag-pipeline", "rag_pipeline")
    api_key = env_map(container(deployment, "rag-pipeline"))["API_KEY"]["secretKeyRef"]
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": api_key}


def test_registry_mirror_applies_to_every_image(variant: Bundle) -> None:
    for image in images(variant):
        assert image.startswith("mirror.example:5000/"), image


def test_chart_source_is_overridable(variant: Bundle) -> None:
    assert variant.releases["localai"]["chart"] == "oci://mirror.example:5000/charts/local-ai"


def test_tls_through_cert_manager_issuer(variant: Bundle) -> None:
    for name, component, host in (
        ("localai", "localai", "localai.local"),
        ("anythingllm", "anythingllm", "anythingllm.local"),
    ):
        ingress = variant.get("Ingress", name, component)
        assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "lab-ca"
        assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": f"{host}-tls"}]


# --- the molecule CPU-only profile -------------------------------------------------------


def test_cpu_only_profile_switches_the_gpu_parts_off() -> None:
    from tests.render.single_node_helpers import cpu_only

    profile = cpu_only()
    assert "gpu_operator" not in profile.objects and "gpu-operator" not in profile.releases
    assert "nvidia.com/gpu" not in json.dumps(profile.values["localai"]["resources"])
    assert profile.values["localai"]["tolerations"] == []
    assert not profile.values["localai"]["deployment"]["image"]["tag"].endswith("cuda-12")
    ollama = profile.get("Deployment", "ollama", "ollama")
    assert ollama["spec"]["template"]["spec"]["tolerations"] == []
    text = "\n".join(p.read_text() for p in profile.root.rglob("*.yaml"))
    assert "nvidia.com/gpu" not in text
    # Same architecture otherwise: services, probes, ConfigMap, ingress hosts.
    assert (
        profile.get("ConfigMap", "rag-pipeline-config")["data"]["LLM_MODEL"]
        == "mistral-7b-instruct"
    )
    assert sorted(r["host"] for i in profile.of_kind("Ingress") for r in i["spec"]["rules"]) == [
        "anythingllm.local",
        "localai.local",
    ]
    # Secrets come from the Vault path in this profile and are still never rendered.
    assert {s["source"] for s in profile.secrets["qdrant"]} == {"vault"}
    assert "molecule-qdrant-key" not in text


# --- teardown ----------------------------------------------------------------------------


def test_teardown_removes_the_stack_but_not_the_platform(bundle: Bundle, tmp_path: Path) -> None:
    root = tmp_path / "build"
    shutil.copytree(bundle.root, root / "single-node")
    proc = run_playbook(
        "playbooks/teardown.yml",
        "-i",
        "inventories/single-node",
        "-e",
        "aistack_deploy_mode=render",
        "-e",
        f"aistack_build_root={root}",
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    left = sorted(p.name for p in (root / "single-node").iterdir())
    # The platform layer stays: cert-manager and the NetworkPolicies guarding the namespace too.
    assert left == ["cert_manager", "gpu_operator", "ingress_nginx", "longhorn", "network_policies"]
    assert "PVCs kept" in " ".join(proc.stdout.split())
