"""The macros of roles/deploy/templates/aistack_k8s.j2 for scaling and placement (hpa, pdb, spread,
anti_affinity), rendered by Jinja as the deploy role renders them, and validated strictly
against Kubernetes 1.31 like every rendered manifest; and the Ingress authentication
annotations (ingress_auth).

The kserve and qdrant roles use pdb, spread and anti_affinity (asserted in
tests/render/test_multi_node.py); hpa is for the Deployments of the stateless services.
"""

from __future__ import annotations

import json
from typing import Any

import jinja2
import yaml

from ansible_collections.aistack.platform.plugins.module_utils.k8s_validation import (
    ManifestValidator,
)
from tests.conftest import REPO

VALIDATOR = ManifestValidator("1.31", strict=True)


def validate_manifest(obj: dict[str, Any], version: str, strict: bool) -> list[str]:
    assert (version, strict) == ("1.31", True)
    return VALIDATOR.validate(obj)


LABELS = {"app.kubernetes.io/part-of": "aistack"}
SELECTOR = {"app.kubernetes.io/name": "rag-pipeline"}


def render(call: str) -> Any:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(REPO / "roles/deploy/templates")),
        trim_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    # The Ansible filters the macros use. (Importing Ansible's filter plugins in the test
    # process would patch sys.intern, after which torch cannot be imported: see conftest.)
    env.filters["to_json"] = json.dumps
    env.filters["from_json"] = json.loads
    env.filters["combine"] = lambda base, *more: {k: v for d in (base, *more) for k, v in d.items()}
    text = env.from_string("{% import 'aistack_k8s.j2' as k8s %}" + call).render(
        labels=LABELS, selector=SELECTOR
    )
    return yaml.safe_load(text)


def test_hpa_on_cpu_and_memory_is_a_valid_autoscaling_v2_object() -> None:
    hpa = render(
        "{{ k8s.hpa('rag-pipeline', 'ai-stack', labels, 'rag-pipeline', 2, 6, cpu=70, memory=80) }}"
    )
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "rag-pipeline"
    }  # fmt: skip
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    assert validate_manifest(hpa, "1.31", strict=True) == []
    only_cpu = render(
        "{{ k8s.hpa('a', 'ns', labels, 'a', 1, 3, cpu=50, target_kind='StatefulSet') }}"
    )
    assert [m["resource"]["name"] for m in only_cpu["spec"]["metrics"]] == ["cpu"]
    assert only_cpu["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"


def test_pdb_min_available_or_max_unavailable() -> None:
    pdb = render("{{ k8s.pdb('rag', 'ai-stack', labels, selector, min_available=1) }}")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": SELECTOR}}
    assert validate_manifest(pdb, "1.31", strict=True) == []
    default = render("{{ k8s.pdb('rag', 'ai-stack', labels, selector) }}")
    assert default["spec"]["maxUnavailable"] == 1 and "minAvailable" not in default["spec"]
    percent = render("{{ k8s.pdb('rag', 'ai-stack', labels, selector, max_unavailable='50%') }}")
    assert percent["spec"]["maxUnavailable"] == "50%"


def test_spread_and_anti_affinity_fit_a_pod_spec() -> None:
    spread = render("{{ k8s.spread(selector, zone_skew=2) }}")
    assert [c["topologyKey"] for c in spread] == [
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"
    ]  # fmt: skip
    required = render("{{ k8s.anti_affinity(selector) }}")
    preferred = render("{{ k8s.anti_affinity(selector, required=false) }}")
    assert "requiredDuringSchedulingIgnoredDuringExecution" in required["podAntiAffinity"]
    (weighted,) = preferred["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert weighted["podAffinityTerm"]["labelSelector"] == {"matchLabels": SELECTOR}
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "rag", "namespace": "ai-stack"},
        "spec": {
            "selector": {"matchLabels": SELECTOR},
            "template": {
                "metadata": {"labels": SELECTOR},
                "spec": {
                    "containers": [{"name": "rag", "image": "rag:1"}],
                    "topologySpreadConstraints": spread,
                    "affinity": required,
                },
            },
        },
    }
    assert validate_manifest(deployment, "1.31", strict=True) == []


def test_ingress_auth_basic_reads_an_htpasswd_secret() -> None:
    annotations = render("{{ k8s.ingress_auth('basic', secret='ui-auth', realm='UI') }}")
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations == {
        prefix + "auth-type": "basic",
        prefix + "auth-secret": "ui-auth",
        prefix + "auth-secret-type": "auth-file",
        prefix + "auth-realm": "UI",
    }


def test_ingress_auth_oauth2_proxy_checks_and_signs_in_through_the_proxy() -> None:
    call = "{{ k8s.ingress_auth('oauth2-proxy', proxy_url='https://sso.lab.local') }}"
    annotations = render(call)
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "auth-url"] == "https://sso.lab.local/oauth2/auth"
    assert annotations[prefix + "auth-signin"] == (
        "https://sso.lab.local/oauth2/start?rd=$scheme://$host$escaped_request_uri"
    )
    assert "auth-type" not in " ".join(annotations)


def test_ingress_auth_none_adds_nothing() -> None:
    assert render("{{ k8s.ingress_auth('none') }}") == {}
