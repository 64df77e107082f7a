# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Custom resources the collection may render, with the fields their CRDs require.

kubernetes-validate ships schemas for built-in kinds only; every custom resource a role
renders must be registered here so that it gets a structural check instead of passing
unchecked. Keys are (apiVersion, kind); values list dotted paths that must be present
and non-empty, optional type checks, allowed values (a CRD's enums, "choices"), regular
expressions a string field must match (a CRD's "pattern", "patterns"), whether
the kind is namespaced, and which top-level fields besides apiVersion/kind/metadata
are allowed (strict mode).
"""

from __future__ import annotations

from typing import Any

CUSTOM_RESOURCES: dict[tuple[str, str], dict[str, Any]] = {
    # NVIDIA GPU operator
    ("nvidia.com/v1", "ClusterPolicy"): {"namespaced": False, "required": ["spec"]},
    # Prometheus operator (kube-prometheus-stack)
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "required": ["spec.selector", "spec.endpoints"],
        "types": {"spec.endpoints": list},
    },
    ("monitoring.coreos.com/v1", "PodMonitor"): {
        "required": ["spec.selector", "spec.podMetricsEndpoints"],
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "required": ["spec.groups"],
        "types": {"spec.groups": list},
    },
    # cert-manager
    ("cert-manager.io/v1", "Certificate"): {"required": ["spec.secretName", "spec.issuerRef.name"]},
    ("cert-manager.io/v1", "ClusterIssuer"): {"namespaced": False, "required": ["spec"]},
    # KServe
    ("serving.kserve.io/v1beta1", "InferenceService"): {"required": ["spec.predictor"]},
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): {
        "required": ["spec.containers", "spec.supportedModelFormats"],
    },
    ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"): {
        "namespaced": False,
        "required": ["spec.containers", "spec.supportedModelFormats"],
    },
    # Gateway API and the inference extension (llm-d)
    ("gateway.networking.k8s.io/v1", "Gateway"): {
        "required": ["spec.gatewayClassName", "spec.listeners"],
    },
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): {
        "required": ["spec.parentRefs", "spec.rules"],
        "types": {"spec.parentRefs": list, "spec.rules": list},
    },
    ("inference.networking.k8s.io/v1", "InferencePool"): {
        "required": [
            "spec.selector.matchLabels",
            "spec.targetPorts",
            "spec.endpointPickerRef.name",
            "spec.endpointPickerRef.port.number",
        ],
        "types": {"spec.targetPorts": list, "spec.selector.matchLabels": dict},
    },
    # Istio (gateway provider of the llm-d Gateway): TLS to the endpoint picker
    ("networking.istio.io/v1", "DestinationRule"): {"required": ["spec.host"]},
    # CloudNativePG 1.27.1 (config/crd/bases/postgresql.cnpg.io_clusters.yaml): the backup
    # section's enums and the retention policy's pattern; managed roles' inRoles is a list.
    ("postgresql.cnpg.io/v1", "Cluster"): {
        "required": ["spec.instances", "spec.storage.size"],
        "types": {"spec.instances": int, "spec.managed.roles": list},
        "choices": {
            "spec.backup.target": ("primary", "prefer-standby"),
            "spec.backup.barmanObjectStore.wal.compression": (
                "bzip2",
                "gzip",
                "lz4",
                "snappy",
                "xz",
                "zstd",
            ),
            "spec.backup.barmanObjectStore.data.compression": ("bzip2", "gzip", "snappy"),
        },
        "patterns": {
            "spec.backup.retentionPolicy": r"^[1-9][0-9]*[dwm]$",
            "spec.backup.barmanObjectStore.destinationPath": r"^\S+$",
        },
    },
    ("postgresql.cnpg.io/v1", "Database"): {
        "required": ["spec.name", "spec.owner", "spec.cluster.name"],
    },
    # ScheduledBackup (postgresql.cnpg.io_scheduledbackups.yaml, 1.27.1): the schedule has six
    # fields, seconds first (robfig/cron), not a CronJob's five.
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): {
        "required": ["spec.schedule", "spec.cluster.name"],
        "choices": {
            "spec.method": ("barmanObjectStore", "volumeSnapshot", "plugin"),
            "spec.backupOwnerReference": ("none", "self", "cluster"),
            "spec.target": ("primary", "prefer-standby"),
        },
        "patterns": {"spec.schedule": r"^(@\S+|\S+( \S+){5})$"},
    },
    # Llama Stack operator
    ("llamastack.io/v1alpha1", "LlamaStackDistribution"): {
        "required": ["spec.server.containerSpec.port"],
        "types": {"spec.server.containerSpec.env": list},
    },
    # Kuadrant MCP gateway v0.9.0 (charts/mcp-gateway/crds/mcp.kuadrant.io_*.yaml): v1 is the
    # storage version, v1alpha1 is deprecated. MCPServerRegistration requires spec.targetRef.name
    # (an HTTPRoute); the prefix is optional but must match the CRD's pattern (it is immutable).
    ("mcp.kuadrant.io/v1", "MCPServerRegistration"): {
        "required": ["spec.targetRef.name"],
        "types": {"spec.targetRef.name": str, "spec.prefix": str, "spec.path": str},
        "choices": {
            "spec.targetRef.group": ("gateway.networking.k8s.io",),
            "spec.targetRef.kind": ("HTTPRoute",),
            "spec.state": ("Enabled", "Disabled"),
        },
        "patterns": {"spec.prefix": r"^[a-z0-9][a-z0-9_]*$", "spec.path": r"^/"},
    },
    # MCPGatewayExtension: the Gateway and listener (sectionName) the broker-router serves.
    ("mcp.kuadrant.io/v1", "MCPGatewayExtension"): {
        "required": ["spec.targetRef.name", "spec.targetRef.sectionName"],
        "choices": {
            "spec.targetRef.group": ("gateway.networking.k8s.io",),
            "spec.targetRef.kind": ("Gateway",),
            "spec.httpRouteManagement": ("Enabled", "Disabled"),
        },
    },
    # Kuadrant operator v1.5.2 (config/crd/bases/kuadrant.io_authpolicies.yaml): targetRef
    # {group, kind, name} required, group gateway.networking.k8s.io, kind HTTPRoute, GRPCRoute
    # or Gateway (the CRD's CEL rules).
    ("kuadrant.io/v1", "AuthPolicy"): {
        "required": ["spec.targetRef.group", "spec.targetRef.kind", "spec.targetRef.name"],
        "choices": {
            "spec.targetRef.group": ("gateway.networking.k8s.io",),
            "spec.targetRef.kind": ("HTTPRoute", "GRPCRoute", "Gateway"),
        },
    },
    # The Kuadrant instance the operator reconciles (Authorino, Limitador); spec may be empty.
    ("kuadrant.io/v1beta1", "Kuadrant"): {"required": []},
    # Kagenti operator (kagenti-operator-chart 0.2.0-rc.8, pinned by Kagenti v0.6.1): the CRD
    # agentruntimes.agent.kagenti.dev requires spec.targetRef{apiVersion,kind,name} and spec.type.
    ("agent.kagenti.dev/v1alpha1", "AgentRuntime"): {
        "required": [
            "spec.type",
            "spec.targetRef.apiVersion",
            "spec.targetRef.kind",
            "spec.targetRef.name",
        ],
        "types": {"spec.targetRef.name": str, "spec.targetRef.kind": str},
        "choices": {"spec.type": ("agent", "tool")},
    },
    # Longhorn
    ("longhorn.io/v1beta2", "RecurringJob"): {
        "required": ["spec.cron", "spec.task", "spec.retain"],
    },
}
