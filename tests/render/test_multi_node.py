"""The multi-node inventory, rendered once per session: GPU node groups (MIG on H100,
time-slicing on L40S), the autoscaled vLLM predictor, distributed Qdrant, replicated
PostgreSQL, Longhorn with three replicas.

Render mode only: the deploy mechanism validates every manifest strictly against Kubernetes
1.31; these tests check the facts that make the stack work past one node.
"""

from __future__ import annotations

import atexit
import functools
import json
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


def test_vllm_predictor_is_scaled_by_keda_on_its_queue() -> None:
    isvc = predictor()
    assert isvc["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "Standard",
        "serving.kserve.io/autoscalerClass": "keda",
    }
    spec = isvc["spec"]["predictor"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 8)
    assert "scaleMetric" not in spec
    # KServe v0.20's KEDA reconciler turns each External metric into a prometheus trigger
    # (serverAddress, query, threshold = target.value). No activation trigger: minimum 2.
    (metric,) = spec["autoScaling"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["target"] == {"type": "Value", "value": "4"}
    source = metric["external"]["metric"]
    assert source["backend"] == "prometheus"
    assert source["query"] == (
        'sum(vllm:num_requests_waiting{namespace="ai-stack",model_name="qwen2.5-7b-instruct"})'
    )
    # The monitoring stack's Prometheus, which scrapes vLLM through the predictor's PodMonitor.
    prometheus = bundle("kube_prometheus_stack").values("kube-prometheus-stack")
    service = prometheus["fullnameOverride"] + "-prometheus"
    assert source["serverAddress"] == f"http://{service}.monitoring.svc.cluster.local:9090"
    podmonitor = bundle("kserve").get("PodMonitor", "llm-vllm")
    assert podmonitor["spec"]["selector"]["matchLabels"].items() <= spec["labels"].items()
    # The replicas share the model cache.
    pvc = bundle("kserve").get("PersistentVolumeClaim", "llm-model-cache")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_keda_is_installed_hardened_before_kserve() -> None:
    keda = bundle("keda")
    release = keda.release("keda")
    assert (release["chart"], release["version"], release["namespace"]) == (
        "kedacore/keda", "2.20.2", "keda"
    )  # fmt: skip
    namespace = keda.get("Namespace", "keda")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    values = keda.values("keda")
    parts = ("operator", "metricServer", "webhooks")
    for part in parts:
        context = values["securityContext"][part]
        assert context["capabilities"] == {"drop": ["ALL"]}, part
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert values["podSecurityContext"][part] == {"runAsNonRoot": True}
        assert set(values["resources"][part]) == {"requests", "limits"}, part
        assert values["prometheus"][part]["serviceMonitor"]["enabled"] is True
    # The chart's own policies hold KEDA's flows (its namespace is not in the default deny).
    assert values["networkPolicy"] == {"enabled": True, "flavor": "kubernetes"}
    assert {values["image"][i]["tag"] for i in ("keda", "metricsApiServer", "webhooks")} == {
        "2.20.2"
    }
    # KEDA's CRDs (ScaledObject) exist before KServe creates the predictor's ScaledObject.
    catalogue = yaml.safe_load(Path("playbooks/vars/architectures.yml").read_text())
    order = list(catalogue["aistack_component_catalog"])
    assert order.index("keda") < order.index("kserve")


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
    # It reads the benchmark Jobs' results volume, shared across nodes.
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"]
                 if "persistentVolumeClaim" in v]  # fmt: skip
    claim = volume["persistentVolumeClaim"]["claimName"]
    pvc = bundle("llm_benchmark").get("PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


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


def test_postgres_read_only_role_for_grafana_on_the_standbys() -> None:
    cnpg = bundle("cloudnative_pg")
    roles = {r["name"]: r for r in cnpg.get("Cluster", "aistack-pg")["spec"]["managed"]["roles"]}
    assert roles["readonly"] == {
        "name": "readonly", "ensure": "present", "login": True,
        "inRoles": ["pg_read_all_data"], "passwordSecret": {"name": "pg-reader-credentials"},
    }  # fmt: skip
    secrets = {(s["namespace"], s["name"]): s for s in cnpg.required_secrets()}
    assert secrets["ai-stack", "pg-reader-credentials"]["keys"] == ["username", "password"]

    kps = bundle("kube_prometheus_stack")
    grafana = kps.values("kube-prometheus-stack")["grafana"]
    (source,) = grafana["additionalDataSources"]
    # The operator's -ro service: the standbys only, never the primary.
    assert source["url"] == "aistack-pg-ro.ai-stack.svc.cluster.local:5432"
    assert source["type"] == "grafana-postgresql-datasource"
    assert source["jsonData"]["database"] == "mlflow"
    # Credentials from the Secret through the environment, never in the datasource ConfigMap.
    assert source["user"] == "${PG_READER_USER}"
    assert source["secureJsonData"] == {"password": "${PG_READER_PASSWORD}"}
    assert grafana["envValueFrom"] == {
        "PG_READER_USER": {"secretKeyRef": {"name": "pg-reader-credentials", "key": "username"}},
        "PG_READER_PASSWORD": {
            "secretKeyRef": {"name": "pg-reader-credentials", "key": "password"}
        },
    }
    kps_secrets = {(s["namespace"], s["name"]) for s in kps.required_secrets()}
    assert ("monitoring", "pg-reader-credentials") in kps_secrets
    # Grafana (monitoring) may reach the database port, and only that one.
    policy = bundle("network_policies").get("NetworkPolicy", "aistack-postgres")
    grafana_rules = [
        rule for rule in policy["spec"]["ingress"]
        if rule["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "grafana"}
    ]  # fmt: skip
    assert [rule["ports"] for rule in grafana_rules] == [[{"protocol": "TCP", "port": 5432}]]


def test_postgres_backups_to_object_storage() -> None:
    cnpg = bundle("cloudnative_pg")
    backup = cnpg.get("Cluster", "aistack-pg")["spec"]["backup"]
    assert backup["retentionPolicy"] == "30d"
    assert backup["target"] == "prefer-standby"
    store = backup["barmanObjectStore"]
    assert store["destinationPath"] == "s3://aistack-backups/postgres"
    assert store["endpointURL"] == "https://s3.lab.example"
    # Credentials by reference to an existing Secret, never inline.
    assert store["s3Credentials"] == {
        "accessKeyId": {"name": "pg-backup-s3", "key": "ACCESS_KEY_ID"},
        "secretAccessKey": {"name": "pg-backup-s3", "key": "ACCESS_SECRET_KEY"},
    }
    assert store["wal"] == {"compression": "gzip"} and store["data"] == {"compression": "gzip"}
    secrets = {s["name"]: s for s in cnpg.required_secrets()}
    assert secrets["pg-backup-s3"]["keys"] == ["ACCESS_KEY_ID", "ACCESS_SECRET_KEY"]
    assert secrets["pg-backup-s3"]["source"] == "existing"

    scheduled = cnpg.get("ScheduledBackup", "aistack-pg-base")
    assert scheduled["spec"] == {
        "schedule": "0 0 3 * * *",  # CNPG's six fields, seconds first
        "cluster": {"name": "aistack-pg"},
        "method": "barmanObjectStore",
        "immediate": True,
        "backupOwnerReference": "self",
    }
    # The instances reach the object store (HTTPS), and nothing else outside the cluster.
    policy = bundle("network_policies").get("NetworkPolicy", "aistack-postgres")
    external = [
        rule for rule in policy["spec"]["egress"] if "except" in rule["to"][0].get("ipBlock", {})
    ]
    assert [rule["ports"] for rule in external] == [[{"protocol": "TCP", "port": 443}]]
    assert policy["metadata"]["annotations"]["aistack.io/external-hosts"] == "s3.lab.example"


def test_longhorn_three_replicas_on_the_selected_nodes_and_disks() -> None:
    longhorn = bundle("longhorn")
    values = longhorn.values("longhorn")
    assert values["persistence"]["defaultClassReplicaCount"] == 3
    # The default StorageClass's nodeSelector / diskSelector parameters (chart 1.12.1).
    assert values["persistence"]["defaultNodeSelector"] == {"enable": True, "selector": "storage"}
    assert values["persistence"]["defaultDiskSelector"] == {"enable": True, "selector": "ssd"}
    # Disks only on the labelled nodes, not on every node that joins (the GPU nodes).
    assert values["defaultSettings"]["createDefaultDiskLabeledNodes"] is True
    text = (multi_node() / "longhorn" / "node-labels.yaml").read_text(encoding="utf-8")
    nodes = yaml.safe_load(text)["nodes"]
    assert sorted(nodes) == ["cpu-1", "cpu-2", "cpu-3"]
    meta = nodes["cpu-2"]
    assert meta["labels"] == {"node.longhorn.io/create-default-disk": "config"}
    annotations = meta["annotations"]
    assert json.loads(annotations["node.longhorn.io/default-node-tags"]) == ["storage"]
    assert json.loads(annotations["node.longhorn.io/default-disks-config"]) == [
        {"path": "/var/lib/longhorn/", "allowScheduling": True, "tags": ["ssd"]}
    ]
    assert (
        "kubectl label node cpu-3 --overwrite node.longhorn.io/create-default-disk=config\n" in text
    )
    # Not a manifest: the bundle never applies Node objects.
    assert "node-labels.yaml" not in yaml.safe_dump(longhorn.kustomization())


# -- what preflight refuses ------------------------------------------------------------------

# Each role's validation on its own, each block with its own settings (nothing rendered).
REFUSALS = """
- hosts: localhost
  gather_facts: false
  tasks:
    - block:
        - ansible.builtin.include_role: {name: aistack.platform.kserve, tasks_from: validate}
      rescue:
        - ansible.builtin.debug: {msg: "REFUSED {{ ansible_failed_result.msg }}"}
      vars:
        aistack_effective_components: {kserve: true}
        kserve_autoscaler_class: keda
        kserve_min_replicas: 0
        kserve_max_replicas: 4
        kserve_model_cache_access_mode: ReadWriteMany
    - block:
        - ansible.builtin.include_role: {name: aistack.platform.kserve, tasks_from: validate}
      rescue:
        - ansible.builtin.debug: {msg: "REFUSED {{ ansible_failed_result.msg }}"}
      vars:
        kserve_autoscaler_class: hpa
        kserve_min_replicas: 0
        kserve_max_replicas: 4
        kserve_model_cache_access_mode: ReadWriteMany
    - block:
        - ansible.builtin.include_role: {name: aistack.platform.kserve, tasks_from: validate}
        - ansible.builtin.debug: {msg: ACCEPTED scale to zero}
      vars:
        aistack_effective_components: {kserve: true, keda: true}
        kserve_autoscaler_class: keda
        kserve_min_replicas: 0
        kserve_max_replicas: 4
        kserve_model_cache_access_mode: ReadWriteMany
        kserve_keda_activation_query: sum(rate(gateway_requests_total[2m]))
    - block:
        - ansible.builtin.include_role:
            {name: aistack.platform.cloudnative_pg, tasks_from: validate}
      rescue:
        - ansible.builtin.debug: {msg: "REFUSED {{ ansible_failed_result.msg }}"}
      vars:
        cloudnative_pg_reader_enabled: true
        cloudnative_pg_reader_role: app
        cloudnative_pg_backup_enabled: true
        cloudnative_pg_backup_destination_path: /backups
        cloudnative_pg_backup_retention_policy: 30 days
        cloudnative_pg_backup_schedule: 0 3 * * *
    - block:
        - ansible.builtin.include_role: {name: aistack.platform.longhorn, tasks_from: validate}
      rescue:
        - ansible.builtin.debug: {msg: "REFUSED {{ ansible_failed_result.msg }}"}
      vars:
        longhorn_replica_count: 3
        longhorn_node_selector: [storage]
        longhorn_disk_selector: [nvme]
        longhorn_storage_nodes:
          - {name: cpu-1, tags: [storage], disks: [{path: /mnt/nvme, tags: [nvme]}]}
          - {name: cpu-2, tags: [storage]}
          - {name: cpu-3, tags: [fast], disks: [{path: relative, tags: [nvme, "bad tag"]}]}
    - block:
        - ansible.builtin.include_role:
            {name: aistack.platform.kube_prometheus_stack, tasks_from: validate}
      rescue:
        - ansible.builtin.debug: {msg: "REFUSED {{ ansible_failed_result.msg }}"}
      vars:
        aistack_effective_components: {cloudnative_pg: true, kube_prometheus_stack: true}
        kube_prometheus_stack_grafana_postgres_enabled: true
"""


def test_scaling_database_and_storage_settings_are_refused_with_every_reason(
    tmp_path: Path,
) -> None:
    playbook = tmp_path / "refusals.yml"
    playbook.write_text(REFUSALS)
    proc = run_playbook(str(playbook))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, out[-3000:]
    assert out.count("REFUSED") == 5, out[-3000:]
    assert "ACCEPTED scale to zero" in out
    for message in (
        "kserve_autoscaler_class keda needs the keda component (aistack_components: {keda: true})",
        "kserve_min_replicas 0 needs kserve_keda_activation_query: vLLM reports its queue only "
        "while a pod runs",
        "kserve_min_replicas 0 (scale to zero) needs kserve_autoscaler_class keda: KServe v0.20 "
        "raises the minimum of its HPA to 1",
        "cloudnative_pg_reader_role must be a lower-case SQL identifier other than the database "
        'owners, got "app"',
        'cloudnative_pg_backup_destination_path must be an s3://bucket[/path] URL, got "/backups"',
        "cloudnative_pg_backup_retention_policy must look like 30d, 4w or 6m",
        "cloudnative_pg_backup_schedule needs six fields, seconds first (CNPG ScheduledBackup), "
        'got "0 3 * * *"',
        "longhorn_replica_count 3 needs as many storage nodes matching longhorn_node_selector "
        '["storage"] and longhorn_disk_selector ["nvme"] (one replica per node); '
        'matching: ["cpu-1"]',
        'every disk of longhorn_storage_nodes needs an absolute path, got ["relative"]',
        'Longhorn tags must be letters, digits, ".", "_" or "-": ["bad tag"]',
        "kube_prometheus_stack_grafana_postgres_enabled needs cloudnative_pg_reader_enabled",
    ):
        assert message in out, message


# -- the capacity planner of the summary ---------------------------------------------------


def test_summary_plans_the_gpu_capacity() -> None:
    out = _render()[1]
    assert "GPU capacity:" in out
    assert "h100 (H100-80GB, mig): 2 node(s) x 16 slice(s) of 40 GB" in out
    assert "l40s (L40S-48GB, time-slicing): 2 node(s) x 8 share(s) of 24 GB" in out
    # The autoscaler's maximum (8) fits on the 32 MIG slices of the h100 group.
    assert "kserve/llm on h100: 8/8 replica(s) of 1 device(s) fit (room for 32 in all)" in out
    assert "WILL NOT SCHEDULE" not in out


# The kserve role alone, rendered with scale to zero (the inventory keeps a minimum of 2).
SCALE_TO_ZERO = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role: {name: aistack.platform.kserve}
      vars:
        aistack_effective_components: {kserve: true, keda: true}
        kserve_autoscaler_class: keda
        kserve_min_replicas: 0
        kserve_max_replicas: 3
        kserve_model_cache_access_mode: ReadWriteMany
        kserve_keda_activation_query: sum(rate(gateway_requests_total{route="llm"}[2m]))
"""


def test_scale_to_zero_adds_the_wake_up_trigger_and_drops_the_budget(tmp_path: Path) -> None:
    playbook = tmp_path / "scale-to-zero.yml"
    playbook.write_text(SCALE_TO_ZERO)
    proc = run_playbook(
        str(playbook), "-e", "aistack_deploy_mode=render",
        "-e", f"aistack_build_root={tmp_path}", "-e", f"aistack_render_dir={tmp_path}/zero",
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    objects = Bundle(tmp_path / "zero" / "kserve")
    spec = objects.get("InferenceService", "llm")["spec"]["predictor"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (0, 3)
    queue, wake = spec["autoScaling"]["metrics"]
    assert "vllm:num_requests_waiting" in queue["external"]["metric"]["query"]
    assert wake["external"]["metric"]["query"] == (
        'sum(rate(gateway_requests_total{route="llm"}[2m]))'
    )
    assert wake["external"]["target"] == {"type": "Value", "value": "1"}
    assert (
        wake["external"]["metric"]["serverAddress"] == queue["external"]["metric"]["serverAddress"]
    )
    # One pod left must not block a drain: no budget when the minimum is 0; still spread.
    assert "PodDisruptionBudget" not in objects.kinds()
    assert spec["topologySpreadConstraints"]
