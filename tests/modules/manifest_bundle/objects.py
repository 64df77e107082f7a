"""The small bundle both manifest_bundle test files render: one Service and one Helm release."""

from __future__ import annotations

from typing import Any

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "qdrant", "namespace": "ai-stack"},
    "spec": {"selector": {"app": "qdrant"}, "ports": [{"name": "http", "port": 6333}]},
}
RELEASE: dict[str, Any] = {
    "name": "qdrant",
    "namespace": "ai-stack",
    "chart": "qdrant/qdrant",
    "repo_url": "https://qdrant.github.io/qdrant-helm",
    "version": "1.19.1",
    "values": {"persistence": {"size": "20Gi"}},
}
