"""The multi-node inventory, rendered once per session: GPU node groups (MIG on H100,
time-slicing on L40S), the autoscaled vLLM predictor, distributed Qdrant, replicated
PostgreSQL, Longhorn with three replicas.

Render mode only: the deploy mechanism validates every manifest strictly against Kubernetes
1.31; these tests check the facts that make the stack work past one node.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import run_playbook
from tests.render.catalyst_helpers import Bundle, RenderError
from tests.render.single_node_helpers import single_node

INVENTORY = "inventories/multi-node"


@functools.cache
def multi_node() -> Path:
    """The bundle of inventories/multi-node (rendered once per session)."""
    return _render()[0]


@functools.cache
def _render() -> tuple[Path, str]:
    """Renders inventories/multi-node once for the whole session (about a minute)."""
    root = Path(tempfile.mkdtemp(prefix="aistack-multi-node-"))
    atexit.register(shutil.rmtree, root, True)
    proc = run_playbook(
        "site.yml", "-i", INVENTORY, "-e", "aistack_deploy_mode=render",
        "-e", "aistack_embedded_enabled=false", "-e", f"aistack_build_root={root}",
    )  # fmt: skip
    if proc.returncode != 0:
        raise RenderError(proc.stdout[-6000:] + proc.stderr[-3000:])
    return root / "multi-node", proc.stdout


def bundle(component: str) -> Bundle:
    path = multi_node() / component
    assert path.is_dir(), f"{component} was not rendered"
    return Bundle(path)


def test_lab_plus_the_kept_single_node_components_render() -> None:
    rendered = sorted(p.name for p in multi_node().iterdir() if p.is_dir())
    for component in ("gpu_operator", "kserve", "llm_d", "cloudnative_pg", "mlflow", "qdrant",
                      "rag_pipeline", "kube_prometheus_stack"):  # fmt: skip
        assert component in rendered, rendered
    for component in ("localai", "ollama", "anythingllm"):
        assert component not in rendered


# -- GPU node groups ------------------------------------------------------------------------


def test_mig_config_names_the_profiles_of_the_node_groups() -> None:
    gpu = bundle("gpu_operator")
    mig = gpu.get("ConfigMap", "custom-mig-config")
    config = yaml.safe_load(mig["data"]["config.yaml"])
    # mig-parted format (gpu-operator chart v26.3.3): H100 80GB holds two 3g.40gb slices per GPU.
    assert config == {
        "version": "v1",
        "mig-configs": {
            "all-disabled": [{"devices": "all", "mig-enabled": False}],
            "all-3g.40gb": [{"devices": "all", "mig-enabled": True, "mig-devices": {"3g.40gb": 2}}],
        },
    }
    values = gpu.values("gpu-operator")
    assert values["mig"] == {"strategy": "mixed"}
    assert values["migManager"]["enabled"] is True
    assert values["migManager"]["config"] == {
        "create": False, "name": "custom-mig-config", "default": "all-disabled"
    }  # fmt: skip
    assert values["devicePlugin"]["config"]["name"] == "time-slicing-config"
    # The MIG ConfigMap is created before the operator release (pre-manifests).
    kinds = [(o["kind"], o["metadata"]["name"]) for o in gpu.objects()]
    assert kinds.index(("ConfigMap", "custom-mig-config")) < len(kinds)
    assert gpu.release("gpu-operator")["version"] == "v26.3.3"


def test_time_slicing_per_group_and_unshared_configs() -> None:
    data = bundle("gpu_operator").get("ConfigMap", "time-slicing-config")["data"]
    configs = {key: yaml.safe_load(text) for key, text in data.items()}
    assert set(configs) == {"any", "l40s", "aistack-exclusive", "aistack-mig-mixed"}
    sliced = configs["l40s"]["sharing"]["timeSlicing"]["resources"]
    assert sliced == [{"name": "nvidia.com/gpu", "replicas": 2}]
    assert configs["any"]["sharing"]["timeSlicing"]["resources"][0]["replicas"] == 4
    # MIG nodes: the device plugin shares nothing and reports the slices with the mixed strategy.
    assert configs["aistack-mig-mixed"] == {"version": "v1", "flags": {"migStrategy": "mixed"}}
    assert "sharing" not in configs["aistack-exclusive"]


def test_node_labels_choose_the_group_sharing() -> None:
    path = multi_node() / "gpu_operator" / "node-labels.yaml"
    text = path.read_text(encoding="utf-8")
    nodes = yaml.safe_load(text)["nodes"]
    assert sorted(nodes) == ["gpu-h100-1", "gpu-h100-2", "gpu-l40s-1", "gpu-l40s-2"]
    assert nodes["gpu-h100-2"] == {
        "aistack.io/gpu-node-group": "h100",
        "nvidia.com/mig.config": "all-3g.40gb",
        "nvidia.com/device-plugin.config": "aistack-mig-mixed",
    }
    assert nodes["gpu-l40s-1"] == {
        "aistack.io/gpu-node-group": "l40s",
        "nvidia.com/device-plugin.config": "l40s",
    }
    assert (
        "kubectl label node gpu-l40s-1 --overwrite aistack.io/gpu-node-group=l40s "
        "nvidia.com/device-plugin.config=l40s\n" in text
    )
    # Not a manifest: the bundle never applies Node objects.
    assert "node-labels.yaml" not in yaml.safe_dump(bundle("gpu_operator").kustomization())


# -- KServe: autoscaling, PDB, spread, MIG resources ------------------------------------------


def predictor() -> dict[str, Any]:
    return bundle("kserve").get("InferenceService", "llm")


def test_vllm_predictor_is_autoscaled_by_kserve_hpa() -> None:
    isvc = predictor()
    assert isvc["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "Standard",
        "serving.kserve.io/autoscalerClass": "hpa",
    }
    spec = isvc["spec"]["predictor"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 8)
    assert (spec["scaleMetric"], spec["scaleMetricType"], spec["scaleTarget"]) == (
        "cpu", "Utilization", 80
    )  # fmt: skip
    # The replicas share the model cache.
    pvc = bundle("kserve").get("PersistentVolumeClaim", "llm-model-cache")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_vllm_predictor_requests_its_mig_slice_on_its_node_group() -> None:
    spec = predictor()["spec"]["predictor"]
    resources = spec["model"]["resources"]
    assert resources["requests"]["nvidia.com/mig-3g.40gb"] == "1"
    assert resources["limits"]["nvidia.com/mig-3g.40gb"] == "1"
    assert "nvidia.com/gpu" not in resources["limits"]
    assert spec["nodeSelector"] == {"aistack.io/gpu-node-group": "h100"}
    runtime = bundle("kserve").get("ServingRuntime", "vllm-runtime")
    assert "--tensor-parallel-size=1" in runtime["spec"]["containers"][0]["args"]


def test_vllm_predictor_pdb_and_topology_spread_select_its_pods() -> None:
    spec = predictor()["spec"]["predictor"]
    pdb = bundle("kserve").get("PodDisruptionBudget", "llm-predictor")
    assert pdb["spec"]["minAvailable"] == 1
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector.items() <= spec["labels"].items()
    (spread,) = spec["topologySpreadConstraints"]
    assert spread == {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": selector},
    }


# -- stateless services: HPA, PDB, topology spread ------------------------------------------

# (component, Deployment, min, max) as the inventory's group_vars/k8s_cluster/stateless.yml sets.
STATELESS = [
    ("rag_pipeline", "rag-pipeline", 2, 6),
    ("agents", "agents-router", 2, 4),
    ("kagenti", "agents-beeai", 2, 3),
]


def test_stateless_services_are_autoscaled_budgeted_and_spread() -> None:
    for component, name, low, high in STATELESS:
        objects = bundle(component)
        deployment = objects.get("Deployment", name)
        # The autoscaler owns the count: an apply must not reset it.
        assert "replicas" not in deployment["spec"], name
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()

        hpa = objects.get("HorizontalPodAutoscaler", name)
        assert hpa["metadata"]["namespace"] == deployment["metadata"]["namespace"]
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
        }  # fmt: skip
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (low, high), name
        cpu = {"type": "Utilization", "averageUtilization": 70}
        assert hpa["spec"]["metrics"] == [
            {"type": "Resource", "resource": {"name": "cpu", "target": cpu}}
        ]
        # Utilisation is a share of the request: every container must request CPU.
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["resources"]["requests"]["cpu"], name

        pdb = objects.get("PodDisruptionBudget", name)
        assert pdb["metadata"]["namespace"] == deployment["metadata"]["namespace"]
        assert pdb["spec"]["minAvailable"] == 1 < low
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

        (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"
        assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    # The RAG replicas share no volume: nothing to mount ReadWriteMany.
    assert "PersistentVolumeClaim" not in bundle("rag_pipeline").kinds()


def test_benchmark_mcp_server_stays_one_replica() -> None:
    objects = bundle("mcp_servers")
    deployment = objects.get("Deployment", "mcp-benchmark")
    assert deployment["spec"]["replicas"] == 1
    assert "HorizontalPodAutoscaler" not in objects.kinds()


def test_single_node_renders_no_autoscaler_budget_or_spread() -> None:
    rendered = single_node()
    for component in ("rag_pipeline", "agents"):
        objects = rendered.objects[component]
        kinds = [o["kind"] for o in objects]
        assert "HorizontalPodAutoscaler" not in kinds and "PodDisruptionBudget" not in kinds
        deployments = [o for o in objects if o["kind"] == "Deployment"]
        assert deployments, component
        for deployment in deployments:
            assert deployment["spec"]["replicas"] == 1
            assert "topologySpreadConstraints" not in deployment["spec"]["template"]["spec"]


# -- Qdrant, PostgreSQL, Longhorn -----------------------------------------------------------


def test_qdrant_distributed_one_peer_per_node() -> None:
    values = bundle("qdrant").values("qdrant")
    assert values["replicaCount"] == 3
    assert values["config"]["cluster"] == {"enabled": True, "p2p": {"port": 6335}}
    assert {"name": "p2p", "port": 6335, "targetPort": 6335, "protocol": "TCP",
            "checksEnabled": False} in values["service"]["ports"]  # fmt: skip
    anti = values["affinity"]["podAntiAffinity"]
    (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
    chart_selector = {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": "qdrant"}
    assert term == {
        "labelSelector": {"matchLabels": chart_selector},
        "topologyKey": "kubernetes.io/hostname",
    }
    assert values["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}


def test_postgres_three_instances_synchronous_and_spread() -> None:
    cluster = bundle("cloudnative_pg").get("Cluster", "aistack-pg")
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["postgresql"]["synchronous"] == {
        "method": "any", "number": 1, "dataDurability": "required"
    }  # fmt: skip
    assert spec["affinity"] == {
        "enablePodAntiAffinity": True,
        "podAntiAffinityType": "required",
        "topologyKey": "kubernetes.io/hostname",
    }
    # MLflow writes (primary service); the operator's -ro service serves the standbys' reads.
    mlflow = bundle("mlflow").values("mlflow")
    assert "aistack-pg-rw." in yaml.safe_dump(mlflow)


def test_longhorn_three_replicas() -> None:
    values = bundle("longhorn").values("longhorn")
    assert values["persistence"]["defaultClassReplicaCount"] == 3


# -- the capacity planner of the summary ---------------------------------------------------


def test_summary_plans_the_gpu_capacity() -> None:
    out = _render()[1]
    assert "GPU capacity:" in out
    assert "h100 (H100-80GB, mig): 2 node(s) x 16 slice(s) of 40 GB" in out
    assert "l40s (L40S-48GB, time-slicing): 2 node(s) x 8 share(s) of 24 GB" in out
    # The autoscaler's maximum (8) fits on the 32 MIG slices of the h100 group.
    assert "kserve/llm on h100: 8/8 replica(s) of 1 device(s) fit (room for 32 in all)" in out
    assert "WILL NOT SCHEDULE" not in out
