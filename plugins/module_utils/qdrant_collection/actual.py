# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's effective configuration, read from Qdrant and normalised to plain dicts.

The normalised form has the keys of ``desired.desired_state`` (every one of them), so that
the two can be compared key by key; ``public_view`` gives the shape of RV(collection).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.common import (
    HNSW_KEYS,
    OPTIMIZER_KEYS,
    UNNAMED,
)


@dataclass
class Snapshot:
    """What Qdrant holds for one collection: normalised state, status and points count."""

    exists: bool
    state: dict[str, Any] = field(default_factory=dict)
    status: Any = None
    points: int = 0


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


def _quantization_to_dict(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    for kind in ("scalar", "product", "binary", "turbo"):
        inner = getattr(config, kind, None)
        if inner is not None:
            out: dict[str, Any] = {"type": kind}
            for key in ("quantile", "compression", "always_ram"):
                if getattr(inner, key, None) is not None:
                    out[key] = _enum(getattr(inner, key))
            return out
    return {"type": type(config).__name__}


def _vectors_to_dict(raw_vectors: Any) -> dict[str, dict[str, Any]]:
    """Dense vectors as {name: {size, distance, on_disk}}; an unnamed vector under ''."""
    if raw_vectors is not None and hasattr(raw_vectors, "size"):
        raw_vectors = {UNNAMED: raw_vectors}
    return {
        name: {"size": spec.size, "distance": _enum(spec.distance), "on_disk": bool(spec.on_disk)}
        for name, spec in (raw_vectors or {}).items()
    }


def _sparse_to_dict(raw_sparse: Any) -> dict[str, dict[str, Any]]:
    """Sparse vectors as {name: {modifier, on_disk}} with Qdrant's defaults filled in."""
    sparse: dict[str, dict[str, Any]] = {}
    for name, spec in (raw_sparse or {}).items():
        sparse[name] = {
            "modifier": _enum(spec.modifier) if spec.modifier is not None else "none",
            "on_disk": bool(spec.index.on_disk)
            if spec.index is not None and spec.index.on_disk is not None
            else False,
        }
    return sparse


def _model_keys(model: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The fields ``keys`` of a pydantic model that are set (enums as their values)."""
    values = model.model_dump(exclude_none=True) if model else {}
    return {key: _enum(value) for key, value in values.items() if key in keys}


def actual_state(info: Any, aliases: list[str]) -> dict[str, Any]:
    """Normalise qdrant-client's CollectionInfo to plain dicts (same keys as desired_state)."""
    params = info.config.params
    return {
        "vectors": _vectors_to_dict(params.vectors),
        "sparse_vectors": _sparse_to_dict(params.sparse_vectors),
        "hnsw_config": _model_keys(info.config.hnsw_config, HNSW_KEYS),
        "optimizers_config": _model_keys(info.config.optimizer_config, OPTIMIZER_KEYS),
        "quantization_config": _quantization_to_dict(info.config.quantization_config),
        "on_disk_payload": params.on_disk_payload,
        "payload_indexes": {
            key: _enum(index.data_type) for key, index in (info.payload_schema or {}).items()
        },
        "aliases": sorted(aliases),
        # A server reports these (its defaults included); embedded Qdrant reports None.
        "shard_number": params.shard_number,
        "replication_factor": params.replication_factor,
        "write_consistency_factor": params.write_consistency_factor,
    }


def read_state(client: Any, name: str) -> Snapshot:
    """Read an existing collection: its normalised state, status and number of points."""
    info = client.get_collection(name)
    aliases = [a.alias_name for a in client.get_collection_aliases(name).aliases]
    points = info.points_count
    if points is None:
        points = client.count(name, exact=True).count
    return Snapshot(True, actual_state(info, aliases), info.status, int(points or 0))


def read_snapshot(client: Any, name: str) -> Snapshot:
    """``read_state`` when the collection exists, else an empty snapshot."""
    if not client.collection_exists(name):
        return Snapshot(False)
    return read_state(client, name)


def all_aliases(client: Any) -> dict[str, str]:
    """Every alias of the Qdrant instance: {alias: collection}."""
    return {a.alias_name: a.collection_name for a in client.get_aliases().aliases}


def public_view(name: str, state: dict[str, Any], status: Any = None) -> dict[str, Any]:
    """The RV(collection) shape: the unnamed vector is shown as a plain dict."""
    if not state:
        return {}
    view = copy.deepcopy(state)
    vectors = view.get("vectors") or {}
    if list(vectors) == [UNNAMED]:
        view["vectors"] = vectors[UNNAMED]
    return {"name": name, "status": _enum(status) if status is not None else None, **view}
