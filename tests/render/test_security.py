"""Security of the rendered stacks (single-node, catalyst-lab, multi-node), from the session's
shared renders: the NetworkPolicy flow graph against the architectures' drawings, pod and
container hardening of every workload the collection renders, ServiceAccounts, Ingress TLS,
and no two different objects under one kind/namespace/name when architectures are combined.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.render.catalyst_helpers import lab
from tests.render.single_node_helpers import single_node
from tests.render.test_multi_node import multi_node

NS = "ai-stack"
RENDERS: dict[str, Callable[[], Path]] = {
    "single-node": lambda: single_node().root,
    "catalyst-lab": lab,
    "multi-node": multi_node,
}

# Pods the collection does not render itself (Helm charts, operators, Kubernetes): the labels
# their upstream projects put on them (chart/operator versions pinned in the role defaults).
UPSTREAM_PODS: dict[str, tuple[str, dict[str, str]]] = {
    "kube-dns": ("kube-system", {"k8s-app": "kube-dns"}),
    "ingress-controller": (
        "ingress-nginx",
        {
            "app.kubernetes.io/name": "ingress-nginx",
            "app.kubernetes.io/instance": "ingress-nginx",
            "app.kubernetes.io/component": "controller",
        },
    ),
    "prometheus": (
        "monitoring",
        {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"},
    ),
    "grafana": (
        "monitoring",
        {
            "app.kubernetes.io/name": "grafana",
            "app.kubernetes.io/instance": "kube-prometheus-stack",
        },
    ),
    # kube-prometheus-stack 88.x: the operator's pods (Prometheus, Alertmanager), the chart's
    # operator and admission Jobs (_prometheus-operator.tpl, _prometheus-operator-webhook.tpl)
    # and its kube-state-metrics subchart.
    "alertmanager": (
        "monitoring",
        {
            "app.kubernetes.io/name": "alertmanager",
            "alertmanager": "kube-prometheus-stack-alertmanager",
        },
    ),
    "prometheus-operator": (
        "monitoring",
        {
            "app": "kube-prometheus-stack-operator",
            "app.kubernetes.io/name": "kube-prometheus-stack-prometheus-operator",
            "app.kubernetes.io/component": "prometheus-operator",
            "release": "kube-prometheus-stack",
        },
    ),
    "prometheus-operator-webhook": (
        "monitoring",
        {
            "app": "kube-prometheus-stack-admission-create",
            "app.kubernetes.io/name": "kube-prometheus-stack-prometheus-operator",
            "app.kubernetes.io/component": "prometheus-operator-webhook",
        },
    ),
    "kube-state-metrics": (
        "monitoring",
        {
            "app.kubernetes.io/name": "kube-state-metrics",
            "app.kubernetes.io/instance": "kube-prometheus-stack",
        },
    ),
    # NVIDIA/gpu-operator assets/state-dcgm-exporter (the DaemonSet's pod labels).
    "dcgm-exporter": ("gpu-operator", {"app": "nvidia-dcgm-exporter"}),
    "otel-collector": (
        "monitoring",
        {
            "app.kubernetes.io/name": "opentelemetry-collector",
            "app.kubernetes.io/instance": "otel-collector",
        },
    ),
    "cnpg-operator": ("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"}),
    # kedacore/keda 2.20.2 (templates/{manager,metrics-server,webhooks}/deployment.yaml).
    "keda-operator": ("keda", {"app": "keda-operator", "name": "keda-operator"}),
    "keda-metrics-apiserver": ("keda", {"app": "keda-operator-metrics-apiserver"}),
    "keda-admission-webhooks": ("keda", {"app": "keda-admission-webhooks"}),
    "kagenti-operator": ("kagenti-system", {"control-plane": "controller-manager"}),
    "llama-stack-operator": (
        "llama-stack-k8s-operator-system",
        {"control-plane": "controller-manager"},
    ),
    "istiod": ("istio-system", {"app": "istiod", "istio": "pilot"}),
    "qdrant": (NS, {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": "qdrant"}),
    "mlflow": (NS, {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": "mlflow"}),
    "postgres": (NS, {"cnpg.io/cluster": "aistack-pg", "cnpg.io/podRole": "instance"}),
    "vllm": (
        NS,
        {
            "serving.kserve.io/inferenceservice": "llm",
            "app.kubernetes.io/name": "llm",
            "llm-d.ai/inference-serving": "true",
        },
    ),
    "llm-d-gateway": (NS, {"gateway.networking.k8s.io/gateway-name": "llm-d-gateway"}),
    "llama-stack": (NS, {"app": "llama-stack", "app.kubernetes.io/instance": "llama-stack"}),
    # The MCP gateway's proxy pods (Istio's automated deployment of the Gateway).
    "mcp-gateway": ("mcp-system", {"gateway.networking.k8s.io/gateway-name": "mcp-gateway"}),
}
API = ("apiserver", 443), ("apiserver", 6443)
API_PORTS = {port for _, port in API}
# kube-prometheus-stack's monitoring namespace (catalyst-lab, multi-node): default deny, then
# Prometheus to every target its ServiceMonitors name, Grafana, the operator, the exporters.
MONITORING = {
    # Prometheus scrapes: itself, its own stack, CoreDNS, DCGM, the CNPG operator, the nodes'
    # host-network endpoints (kubelet, node-exporter, kube-proxy, etcd, controller manager,
    # scheduler), and discovers through the API server (whose metrics it scrapes too).
    ("prometheus", "prometheus", 9090), ("prometheus", "prometheus", 8080),
    ("prometheus", "alertmanager", 9093), ("prometheus", "alertmanager", 8080),
    ("prometheus", "grafana", 3000), ("prometheus", "prometheus-operator", 10250),
    ("prometheus", "kube-state-metrics", 8080), ("prometheus", "otel-collector", 8888),
    ("prometheus", "kube-dns", 9153), ("prometheus", "dcgm-exporter", 9400),
    ("prometheus", "cnpg-operator", 8080),
    *(("prometheus", "nodes", port) for port in (10250, 9100, 10249, 2381, 10257, 10259)),
    *(("prometheus", *api) for api in API),
    # Grafana: users through the ingress controller, its datasources, its sidecars.
    ("ingress-controller", "grafana", 3000), ("grafana", "prometheus", 9090),
    ("grafana", "alertmanager", 9093), *(("grafana", *api) for api in API),
    # The operator and its admission Jobs, kube-state-metrics: the API server; the API server
    # calls the operator's admission webhook.
    *(("prometheus-operator", *api) for api in API), ("apiserver", "prometheus-operator", 10250),
    *(("prometheus-operator-webhook", *api) for api in API),
    *(("kube-state-metrics", *api) for api in API),
    # The collector: metrics to Prometheus' OTLP receiver, pod metadata from the API server.
    ("otel-collector", "prometheus", 9090), *(("otel-collector", *api) for api in API),
}  # fmt: skip

SINGLE_NODE = {
    ("ingress-controller", "anythingllm", 3001), ("ingress-controller", "local-ai", 8080),
    ("anythingllm", "local-ai", 8080), ("anythingllm", "qdrant", 6333),
    ("rag-pipeline", "local-ai", 8080), ("rag-pipeline", "qdrant", 6333),
    ("agents-router", "local-ai", 8080), ("agents-router", "rag-pipeline", 8000),
    ("agents-crew", "local-ai", 8080), ("agents-crew", "rag-pipeline", 8000),
    ("llm-benchmark", "local-ai", 8080), ("ollama-pull", "ollama", 11434),
    ("local-ai", "external", 443), ("ollama", "external", 443),
}  # fmt: skip
CATALYST_LAB = {
    ("ingress-controller", "mlflow", 5000),
    ("agents-router", "llama-stack", 8321), ("agents-router", "otel-collector", 4318),
    ("agents-beeai", "llama-stack", 8321),
    ("kagenti-operator", "agents-router", 9999), ("kagenti-operator", "agents-beeai", 9999),
    ("llm-benchmark", "llm-d-gateway", 80),
    ("llama-stack", "llm-d-gateway", 80), ("llama-stack", "postgres", 5432),
    ("llama-stack", "otel-collector", 4318), ("llama-stack-operator", "llama-stack", 8321),
    ("llm-d-gateway", "vllm-pool-epp", 9002), ("llm-d-gateway", "vllm", 8000),
    ("llm-d-gateway", "istiod", 15012), ("vllm-pool-epp", "vllm", 8000),
    *(("vllm-pool-epp", *api) for api in API), *(("postgres", *api) for api in API),
    ("mlflow", "postgres", 5432), ("otel-collector", "mlflow", 5000),
    ("cnpg-operator", "postgres", 8000), ("vllm", "external", 443),
    ("vllm", "otel-collector", 4318),
    # Prometheus scrapes the metrics ports of the monitored workloads.
    ("prometheus", "agents-router", 9999), ("prometheus", "vllm", 8000),
    ("prometheus", "vllm-pool-epp", 9090), ("prometheus", "postgres", 9187),
    ("prometheus", "mlflow", 5000), ("prometheus", "agents-beeai", 9999),
    *MONITORING,
    # The MCP layer: clients -> gateway (mcp-system) -> each server's guard -> its API.
    ("agents-beeai", "mcp-gateway", 8080),
    # Llama Stack's tool calls get the gateway's key from its MCP proxy.
    ("llama-stack", "llama-stack-mcp-proxy", 8090), ("llama-stack-mcp-proxy", "mcp-gateway", 8080),
    *(("mcp-gateway", f"mcp-{name}", 8090) for name in ("benchmark", "github", "jira", "brave")),
    *((f"mcp-{server}", "external", 443) for server in ("github", "jira", "brave")),
    ("mcp-benchmark", "llama-stack", 8321),
    # The agentic benchmarks: the BeeAI agent over A2A, the model, MLflow.
    ("agentic-benchmark", "agents-beeai", 9999), ("agentic-benchmark", "llama-stack", 8321),
    ("agentic-benchmark", "mlflow", 5000),
}  # fmt: skip
# The lab plus the single-node parts it keeps (distributed Qdrant, the RAG service on it).
# (The SaaS MCP servers are switched on by the lab inventory's group_vars only.)
SAAS_MCP = {
    (a, b, port) for a, b, port in CATALYST_LAB if {a, b} & {"mcp-github", "mcp-jira", "mcp-brave"}
}
MULTI_NODE = (CATALYST_LAB - SAAS_MCP) | {
    ("rag-pipeline", "qdrant", 6333), ("qdrant", "qdrant", 6335),
    ("agents-router", "rag-pipeline", 8000), ("agents-beeai", "rag-pipeline", 8000),
    ("prometheus", "rag-pipeline", 8000), ("postgres", "postgres", 5432),
    ("mcp-benchmark", "rag-pipeline", 8000),
    # Grafana's read-only datasource on the standbys; Barman Cloud to the S3 store (backups).
    ("grafana", "postgres", 5432), ("postgres", "external", 443),
    # KEDA scales vLLM on a Prometheus query; Prometheus scrapes KEDA's three parts.
    ("keda-operator", "prometheus", 9090), ("prometheus", "keda-operator", 8080),
    ("prometheus", "keda-metrics-apiserver", 8080), ("prometheus", "keda-admission-webhooks", 8080),
}  # fmt: skip
EXPECTED = {"single-node": SINGLE_NODE, "catalyst-lab": CATALYST_LAB, "multi-node": MULTI_NODE}

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
# The one list of hardening exceptions (README, section Security): (workload, what, why).
EXCEPTIONS = {
    ("ollama", "non-root"): "the official image keeps its state under /root/.ollama",
    ("ollama", "read-only root"): "runs as root, writes its keys and models under /root",
    ("anythingllm", "read-only root"): "the image writes under /app (collector hot dir, prisma)",
    (
        "vllm",
        "read-only root",
    ): "vLLM's JIT kernels (triton, flashinfer) may write near their packages",
}


def load(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(component, object) for every rendered manifest of a bundle tree."""
    return [
        (path.parent.name, yaml.safe_load(path.read_text(encoding="utf-8")))
        for path in sorted(root.glob("*/[0-9]*.yaml"))
    ]


@pytest.fixture(scope="module", params=list(RENDERS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    name: str = request.param
    return name, load(RENDERS[name]())


# -- the flow graph ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]
    ports: frozenset[int] | None  # container ports when the collection renders the pod


def pod_template(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template: dict[str, Any] = spec["template"]
    return template


def pods(objects: list[tuple[str, dict[str, Any]]]) -> list[Pod]:
    """Every pod the stack runs: the rendered workloads (named by app.kubernetes.io/name),
    then the upstream ones of the enabled components."""
    found: dict[str, Pod] = {}
    for _, obj in objects:
        if obj["kind"] not in WORKLOAD_KINDS or "aistack.io/patch-of" in obj["metadata"].get(
            "annotations", {}
        ):
            continue
        template = pod_template(obj)
        labels = template["metadata"]["labels"]
        name = labels.get("app.kubernetes.io/name", obj["metadata"]["name"])
        ports = {
            p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
        }
        found[name] = Pod(name, obj["metadata"]["namespace"], tuple(sorted(labels.items())),
                          frozenset(ports))  # fmt: skip
    for name, (namespace, labels) in UPSTREAM_PODS.items():
        found.setdefault(name, Pod(name, namespace, tuple(sorted(labels.items())), None))
    # LocalAI's pods come from its chart; the collection renders only a patch of them.
    local_ai = {"app.kubernetes.io/instance": "localai", "app.kubernetes.io/name": "local-ai"}
    found["local-ai"] = Pod("local-ai", NS, tuple(sorted(local_ai.items())), None)
    return list(found.values())


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels is used: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def select(pool: list[Pod], namespace: str, peer: dict[str, Any]) -> set[str]:
    """The pods a policy peer (or a policy's own podSelector, with namespace) selects."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        assert ipaddress.ip_network(block["cidr"])
        return {"external" if block.get("except") else "apiserver"}
    if "namespaceSelector" in peer:
        [(key, namespace)] = peer["namespaceSelector"]["matchLabels"].items()
        assert key == "kubernetes.io/metadata.name"
    return {
        p.name
        for p in pool
        if p.namespace == namespace and matches(peer.get("podSelector", {}), dict(p.labels))
    }


def _nodes(edge: tuple[str, str, int]) -> tuple[str, str, int]:
    """Egress to an ipBlock (no exceptions) off the API server's ports: the nodes."""
    a, b, port = edge
    return (a, "nodes", port) if b == "apiserver" and port not in API_PORTS else edge


def flow_graph(
    objects: list[tuple[str, dict[str, Any]]],
) -> tuple[set[tuple[str, str, int]], set[str], list[str]]:
    """(allowed flows, owned namespaces, problems) from the rendered NetworkPolicies. A flow
    between two owned namespaces is allowed only when the egress of one and the ingress of the
    other both allow it; a one-sided rule is a problem, as is a selector that selects nothing."""
    pool = pods(objects)
    policies = [o for _, o in objects if o["kind"] == "NetworkPolicy"]
    owned = {
        p["metadata"]["namespace"]
        for p in policies
        if p["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    }
    problems: list[str] = []
    ingress: set[tuple[str, str, int]] = set()
    egress: set[tuple[str, str, int]] = set()
    for policy in policies:
        namespace, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
        if name == "aistack-allow-dns":
            continue
        targets = select(pool, namespace, {"podSelector": policy["spec"]["podSelector"]})
        if not targets:
            problems.append(f"{namespace}/{name} selects no pod")
        for direction, key, edges in (("ingress", "from", ingress), ("egress", "to", egress)):
            for rule in policy["spec"].get(direction, []):
                ports = [p["port"] for p in rule["ports"]]
                assert all(p["protocol"] == "TCP" for p in rule["ports"])
                for peer in rule[key]:
                    peers = select(pool, namespace, peer)
                    if not peers:
                        problems.append(f"{namespace}/{name}: {direction} {peer} selects no pod")
                    for a in targets:
                        for b in peers:
                            pair = (b, a) if direction == "ingress" else (a, b)
                            edges.update((*pair, p) for p in ports)
    ingress, egress = ({_nodes(e) for e in edges} for edges in (ingress, egress))
    where = {p.name: p.namespace for p in pool}
    allowed: set[tuple[str, str, int]] = set()
    for edge in ingress | egress:
        source_owned = where.get(edge[0]) in owned
        target_owned = where.get(edge[1]) in owned
        need_egress, need_ingress = source_owned, target_owned
        if (need_egress and edge not in egress) or (need_ingress and edge not in ingress):
            problems.append(f"half-open {edge}: egress {edge in egress}, ingress {edge in ingress}")
        else:
            allowed.add(edge)
    return allowed, owned, problems


def test_flow_graph_is_exactly_the_architecture(
    rendered: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    name, objects = rendered
    allowed, owned, problems = flow_graph(objects)
    # The application namespace, and kube-prometheus-stack's where the architecture runs it.
    assert owned == ({NS} if name == "single-node" else {NS, "monitoring"})
    assert problems == []
    expected = EXPECTED[name]
    assert sorted(expected - allowed) == [], "drawn by the architecture, blocked by the policies"
    assert sorted(allowed - expected) == [], (
        "allowed by the policies, not drawn by the architecture"
    )


def test_default_deny_and_dns(rendered: tuple[str, list[tuple[str, dict[str, Any]]]]) -> None:
    _, objects = rendered
    policies = {o["metadata"]["name"]: o for _, o in objects if o["kind"] == "NetworkPolicy"}
    assert policies["aistack-default-deny"]["spec"] == {
        "podSelector": {}, "policyTypes": ["Ingress", "Egress"]}  # fmt: skip
    dns = policies["aistack-allow-dns"]["spec"]
    assert dns["podSelector"] == {} and dns["policyTypes"] == ["Egress"]
    [rule] = dns["egress"]
    pool = pods(objects)
    assert select(pool, NS, rule["to"][0]) == {"kube-dns"}
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]
    # An external flow never opens the cluster's own (private) networks.
    for policy in policies.values():
        for rule in policy["spec"].get("egress", []):
            for peer in rule["to"]:
                if peer.get("ipBlock", {}).get("except"):
                    assert "10.0.0.0/8" in peer["ipBlock"]["except"]


def test_policy_ports_are_the_rendered_container_ports(
    rendered: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    """The flow list's ports (role variables or their defaults) match the pods the roles render."""
    _, objects = rendered
    allowed, _, _ = flow_graph(objects)
    by_name = {p.name: p for p in pods(objects)}
    wrong = [
        edge for edge in allowed
        if edge[1] in by_name and by_name[edge[1]].ports is not None
        and edge[2] not in (by_name[edge[1]].ports or set())
    ]  # fmt: skip
    assert wrong == []


def test_flow_list_rejects_unknown_names(tmp_path: Path) -> None:
    """A typo in the flow list fails before anything is rendered, naming the flow."""
    from tests.conftest import run_playbook

    flows = [{"from": "rag-pipeline", "to": "qdrnt", "port": "http"},
             {"from": "rag-pipeline", "to": "qdrant", "port": "grcp"}]  # fmt: skip
    proc = run_playbook(
        "playbooks/deploy.yml", "-i", "inventories/single-node",
        "-e", "aistack_deploy_mode=render", "-e", f"aistack_build_root={tmp_path}",
        "-e", yaml.safe_dump({"aistack_deploy_only": ["network_policies"],
                              "network_policies_flows": flows}, default_flow_style=True),
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "flow rag-pipeline -> qdrnt: unknown workload qdrnt" in out
    assert "flow rag-pipeline -> qdrant: qdrant has no port named grcp" in out
    assert not (tmp_path / "single-node" / "network_policies").exists()


# -- workloads: accounts, hardening, resources --------------------------------------------


def workloads(objects: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(identity, kind/name, pod spec) of every workload the collection renders itself (Helm
    charts and operators render theirs; a partial Deployment patching a chart's is not one)."""
    out = []
    for _, obj in objects:
        meta = obj["metadata"]
        patch = "aistack.io/patch-of" in meta.get("annotations", {})
        if obj["kind"] in WORKLOAD_KINDS and not patch:
            template = pod_template(obj)
            name = template["metadata"]["labels"].get("app.kubernetes.io/name", meta["name"])
            out.append((name, f"{obj['kind']}/{meta['name']}", template["spec"]))
        elif obj["kind"] == "InferenceService":
            # KServe builds the predictor pod from the predictor spec and the ServingRuntime.
            runtime = next(o for _, o in objects if o["kind"] == "ServingRuntime")
            spec = dict(obj["spec"]["predictor"])
            container = dict(runtime["spec"]["containers"][0])
            container["resources"] = spec["model"]["resources"]
            spec["containers"] = [container]
            out.append(("vllm", f"InferenceService/{meta['name']}", spec))
    return out


def test_every_workload_is_hardened(rendered: tuple[str, list[tuple[str, dict[str, Any]]]]) -> None:
    _, objects = rendered
    found = workloads(objects)
    assert len(found) >= 3
    problems = []
    for name, what, spec in found:
        pod = spec.get("securityContext", {})
        if pod.get("runAsNonRoot") is not True and (name, "non-root") not in EXCEPTIONS:
            problems.append(f"{what}: not runAsNonRoot")
        for container in spec["containers"] + spec.get("initContainers", []):
            where = f"{what} container {container['name']}"
            sc = container.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities not dropped")
            seccomp = sc.get("seccompProfile", pod.get("seccompProfile", {}))
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccomp not RuntimeDefault")
            writable = sc.get("readOnlyRootFilesystem") is not True
            if writable and (name, "read-only root") not in EXCEPTIONS:
                problems.append(f"{where}: root filesystem writable")
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(bound, {})):
                    problems.append(f"{where}: no cpu/memory {bound}")
    assert problems == []


def test_every_workload_has_its_own_service_account(
    rendered: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    _, objects = rendered
    accounts = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for _, o in objects
        if o["kind"] == "ServiceAccount"
    }
    bound = {o["subjects"][0]["name"] for _, o in objects if o["kind"] == "RoleBinding"}
    problems = []
    used_by: dict[str, set[str]] = {}
    for name, what, spec in workloads(objects):
        account = spec.get("serviceAccountName")
        if not account or (NS, account) not in accounts:
            problems.append(f"{what}: no ServiceAccount of its own ({account})")
            continue
        used_by.setdefault(account, set()).add(name)
        token = spec.get("automountServiceAccountToken")
        if token is not (account in bound):
            problems.append(f"{what}: token mounted {token}, Role bound {account in bound}")
        if accounts[(NS, account)].get("automountServiceAccountToken") is not (account in bound):
            problems.append(f"ServiceAccount {account}: automount does not match its Role")
    assert problems == []
    # One account per workload (a Job shares its long-running workload's account).
    assert all(len(names) == 1 for names in used_by.values()), used_by


def test_roles_are_least_privilege(rendered: tuple[str, list[tuple[str, dict[str, Any]]]]) -> None:
    """API access only through namespaced, read-only Roles (no ClusterRole of our own)."""
    _, objects = rendered
    assert not [o for _, o in objects if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    for _, role in ((c, o) for c, o in objects if o["kind"] == "Role"):
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, role["metadata"]["name"]
            assert "*" not in rule["resources"] and "secrets" not in rule["resources"]


# -- Ingress TLS ----------------------------------------------------------------------------


def test_every_ingress_has_tls_from_the_internal_ca(
    rendered: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    name, objects = rendered
    root = RENDERS[name]()
    ingresses = [o for _, o in objects if o["kind"] == "Ingress"]
    # Ingresses of charts (MLflow, Grafana) are in their values.
    for values_path in root.glob("*/helm/*/values.yaml"):
        values = yaml.safe_load(values_path.read_text(encoding="utf-8")) or {}
        for chart_ingress in (values.get("ingress"), values.get("grafana", {}).get("ingress")):
            if chart_ingress and chart_ingress.get("enabled"):
                ingresses.append({"metadata": {"name": values_path.parent.name,
                                               "annotations": chart_ingress["annotations"]},
                                  "spec": {"tls": chart_ingress["tls"]}})  # fmt: skip
    assert ingresses
    for ingress in ingresses:
        assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "aistack-ca"
        [tls] = ingress["spec"]["tls"]
        assert tls["secretName"] == f"{tls['hosts'][0]}-tls", ingress["metadata"]["name"]
    issuers = {o["metadata"]["name"] for _, o in objects if o["kind"] == "ClusterIssuer"}
    assert issuers == {"aistack-ca", "aistack-ca-selfsigned"}


# -- architectures combined -----------------------------------------------------------------


def test_no_name_clashes_when_combined(
    rendered: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    """Every kind/namespace/name is one object: the same Namespace may come from several roles,
    anything else rendered twice must be identical (multi-node combines the lab with
    single-node parts)."""
    name, objects = rendered
    releases = [
        (path.parent.name, yaml.safe_load(path.read_text(encoding="utf-8")))
        for path in RENDERS[name]().glob("*/helm/*/release.yaml")
    ]
    keys = [(r["namespace"], r["name"]) for _, r in releases]
    assert len(keys) == len(set(keys)), sorted(keys)
    seen: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}
    clashes = []
    for component, obj in objects:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if key in seen and (obj["kind"] != "Namespace" or seen[key][1] != obj):
            clashes.append(f"{key}: {seen[key][0]} and {component}")
        seen.setdefault(key, (component, obj))
    assert clashes == []


def test_readme_lists_the_exceptions() -> None:
    """The README's exceptions table and EXCEPTIONS are the same list."""
    from tests.conftest import REPO

    text = (REPO / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "|---" not in line]
    kinds = {"non-root": "runs as root", "read-only root": "writable root filesystem"}
    listed = {
        (workload, what)
        for workload, what in EXCEPTIONS
        if any(
            row.split("|")[1].strip().startswith(workload) and kinds[what] in row for row in rows
        )
    }
    assert listed == set(EXCEPTIONS)
    table = [r for r in rows if any(k in r for k in kinds.values())]
    assert len(table) == len(EXCEPTIONS)


def test_internal_ca_tls_needs_cert_manager(tmp_path: Path) -> None:
    """TLS by the internal CA with cert_manager off fails in preflight, saying how to fix it."""
    from tests.conftest import run_playbook

    proc = run_playbook(
        "playbooks/preflight.yml", "-i", "inventories/single-node",
        "-e", "aistack_deploy_mode=render", "-e", f"aistack_build_root={tmp_path}",
        "-e", '{"aistack_components": {"cert_manager": false}}',
    )  # fmt: skip
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "internal CA (aistack-ca) of the cert_manager component, which is off" in out
    assert 'aistack_ingress_cluster_issuer: "" for plain HTTP' in out


def test_router_reads_qdrant_directly_only_when_chosen(tmp_path: Path) -> None:
    """agents_retrieval_backend qdrant: the router -> Qdrant flow (absent from every default
    render above), Qdrant's key by Secret reference only, the embedding server and model."""
    from tests.conftest import run_playbook

    extra = {
        "aistack_deploy_only": ["agents", "network_policies"],
        "agents_retrieval_backend": "qdrant",
    }
    proc = run_playbook(
        "playbooks/deploy.yml", "-i", "inventories/single-node",
        "-e", "aistack_deploy_mode=render", "-e", f"aistack_build_root={tmp_path}",
        "-e", yaml.safe_dump(extra, default_flow_style=True),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    objects = load(tmp_path / "single-node")
    allowed, _, problems = flow_graph(objects)
    # Only these two components are rendered: peers of the others select no pod here.
    router = {edge for edge in allowed if edge[0] == "agents-router"}
    assert router == {("agents-router", "qdrant", 6333), ("agents-router", "local-ai", 8080)}
    assert [p for p in problems if "half-open" in p] == []
    config = next(o for _, o in objects if o["metadata"]["name"] == "agents-router-config")
    keys = ("RETRIEVAL_BACKEND", "QDRANT_URL", "EMBEDDING_URL", "EMBEDDING_MODEL")
    assert {k: config["data"].get(k) for k in keys} == {
        "RETRIEVAL_BACKEND": "qdrant",
        "QDRANT_URL": f"http://qdrant.{NS}.svc.cluster.local:6333",
        "EMBEDDING_URL": f"http://localai.{NS}.svc.cluster.local:8080/v1",
        "EMBEDDING_MODEL": "nomic-embed-text-v1.5",
    }
    assert "QDRANT_API_KEY" not in config["data"] and "EMBEDDING_API_KEY" not in config["data"]
    router_pod = next(
        o
        for _, o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "agents-router"
    )
    env = {
        e["name"]: e["valueFrom"]
        for e in router_pod["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["QDRANT_API_KEY"] == {"secretKeyRef": {"name": "qdrant-api-key", "key": "api-key"}}
    assert env["EMBEDDING_API_KEY"]["secretKeyRef"]["optional"] is True
    crew = next(
        o
        for _, o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "agents-crew-config"
    )
    assert "RETRIEVAL_BACKEND" not in crew["data"]  # the crew reads through the RAG service
    required = yaml.safe_load(
        (tmp_path / "single-node" / "agents" / "secrets.required.yaml").read_text()
    )
    assert {
        "name": "qdrant-api-key",
        "namespace": NS,
        "keys": ["api-key"],
        "source": "existing",
    } in required["secrets"]
