# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The qdrant-client calls that create, update and delete a collection.

``client`` is a ``QdrantClient`` (server or embedded) or any object with the same methods.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.actual import (
    all_aliases,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.common import (
    UNNAMED,
)

try:
    from qdrant_client import models
except ImportError:  # pragma: no cover - reported by qdrant.connect()
    models = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- qdrant-client models


def vector_models(vectors: dict[str, dict[str, Any]]) -> Any:
    """VectorParams per name, or a single VectorParams for the unnamed vector."""
    made = {
        name: models.VectorParams(
            size=spec["size"],
            distance=models.Distance(spec["distance"]),
            on_disk=spec.get("on_disk"),
        )
        for name, spec in vectors.items()
    }
    return made[UNNAMED] if list(made) == [UNNAMED] else made


def _sparse_model(modifier: str, spec: dict[str, Any]) -> Any:
    return models.SparseVectorParams(
        modifier=models.Modifier(modifier),
        index=models.SparseIndexParams(on_disk=spec["on_disk"]) if "on_disk" in spec else None,
    )


def sparse_models(sparse: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """SparseVectorParams per name (modifier C(none) unless given)."""
    return {
        name: _sparse_model(spec.get("modifier", "none"), spec) for name, spec in sparse.items()
    }


def quantization_model(quant: dict[str, Any]) -> Any:
    """The quantization config model for O(quantization_config) (C(Disabled) for disabled)."""
    kind = quant["type"]
    if kind == "disabled":
        return models.Disabled.DISABLED
    if kind == "scalar":
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8,
                quantile=quant.get("quantile"),
                always_ram=quant.get("always_ram"),
            )
        )
    if kind == "product":
        return models.ProductQuantization(
            product=models.ProductQuantizationConfig(
                compression=models.CompressionRatio(quant["compression"]),
                always_ram=quant.get("always_ram"),
            )
        )
    return models.BinaryQuantization(
        binary=models.BinaryQuantizationConfig(always_ram=quant.get("always_ram"))
    )


def alias_operations(
    name: str, want: list[str], have: list[str], aliases: dict[str, str]
) -> list[Any]:
    """Alias changes as one atomic batch; an alias of another collection is moved here."""
    ops: list[Any] = []
    for alias in sorted(set(have) - set(want)):
        ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    for alias in sorted(set(want) - set(have)):
        if alias in aliases:  # points at another collection: move it (same atomic batch)
            ops.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        ops.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=name, alias_name=alias)
            )
        )
    return ops


# --------------------------------------------------------------------------- create


def create_kwargs(desired: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``create_collection`` for the desired state."""
    kwargs: dict[str, Any] = {
        "vectors_config": vector_models(desired["vectors"]) if desired.get("vectors") else {},
    }
    if desired.get("sparse_vectors"):
        kwargs["sparse_vectors_config"] = sparse_models(desired["sparse_vectors"])
    if desired.get("hnsw_config"):
        kwargs["hnsw_config"] = models.HnswConfigDiff(**desired["hnsw_config"])
    if desired.get("optimizers_config"):
        kwargs["optimizers_config"] = models.OptimizersConfigDiff(**desired["optimizers_config"])
    quant = desired.get("quantization_config")
    if quant and quant["type"] != "disabled":
        kwargs["quantization_config"] = quantization_model(quant)
    if "on_disk_payload" in desired:
        kwargs["on_disk_payload"] = desired["on_disk_payload"]
    for key in ("shard_number", "replication_factor", "write_consistency_factor"):
        if key in desired:
            kwargs[key] = desired[key]
    return kwargs


def create_collection(client: Any, name: str, desired: dict[str, Any]) -> None:
    """Create the collection, then its payload indexes and aliases."""
    client.create_collection(name, **create_kwargs(desired))
    for field, schema in sorted((desired.get("payload_indexes") or {}).items()):
        client.create_payload_index(
            name, field, field_schema=models.PayloadSchemaType(schema), wait=True
        )
    if desired.get("aliases"):
        ops = alias_operations(name, desired["aliases"], [], all_aliases(client))
        client.update_collection_aliases(change_aliases_operations=ops)


# --------------------------------------------------------------------------- update


def _vector_diffs(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """VectorParamsDiff for the dense vectors whose C(on_disk) differs."""
    return {
        name: models.VectorParamsDiff(on_disk=spec["on_disk"])
        for name, spec in desired["vectors"].items()
        if "on_disk" in spec and spec["on_disk"] != actual["vectors"][name]["on_disk"]
    }


def _sparse_diffs(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """SparseVectorParams for the sparse vectors whose C(modifier) or C(on_disk) differs."""
    changed = {}
    for name, spec in desired["sparse_vectors"].items():
        have = actual["sparse_vectors"][name]
        if any(key in spec and spec[key] != have[key] for key in ("modifier", "on_disk")):
            changed[name] = _sparse_model(spec.get("modifier", have["modifier"]), spec)
    return changed


def update_kwargs(
    desired: dict[str, Any], actual: dict[str, Any], sections: set[str]
) -> dict[str, Any]:
    """Keyword arguments of ``update_collection`` for the sections that differ."""
    kwargs: dict[str, Any] = {}
    if "vectors" in sections:
        kwargs["vectors_config"] = _vector_diffs(desired, actual)
    if "sparse_vectors" in sections:
        kwargs["sparse_vectors_config"] = _sparse_diffs(desired, actual)
    if "hnsw_config" in sections:
        kwargs["hnsw_config"] = models.HnswConfigDiff(**desired["hnsw_config"])
    if "optimizers_config" in sections:
        kwargs["optimizers_config"] = models.OptimizersConfigDiff(**desired["optimizers_config"])
    if "quantization_config" in sections:
        kwargs["quantization_config"] = quantization_model(desired["quantization_config"])
    # One CollectionParamsDiff carries every collection parameter that differs.
    params = {
        key: desired[key]
        for key in ("on_disk_payload", "replication_factor", "write_consistency_factor")
        if key in sections
    }
    if params:
        kwargs["collection_params"] = models.CollectionParamsDiff(**params)
    return kwargs


def sync_payload_indexes(
    client: Any, name: str, want: dict[str, str], have: dict[str, str]
) -> None:
    """Create missing payload indexes; rebuild those with another schema."""
    for field, schema in sorted(want.items()):
        current = have.get(field)
        if current == schema:
            continue
        if current is not None:
            client.delete_payload_index(name, field, wait=True)
        client.create_payload_index(
            name, field, field_schema=models.PayloadSchemaType(schema), wait=True
        )


def sync_aliases(client: Any, name: str, want: list[str], have: list[str]) -> None:
    """Make ``want`` the aliases of the collection, in one atomic batch."""
    ops = alias_operations(name, want, have, all_aliases(client))
    if ops:
        client.update_collection_aliases(change_aliases_operations=ops)


def update_collection(
    client: Any, name: str, desired: dict[str, Any], actual: dict[str, Any], sections: set[str]
) -> None:
    """Update the mutable ``sections`` that differ in place (points are kept)."""
    kwargs = update_kwargs(desired, actual, sections)
    if kwargs:
        client.update_collection(name, **kwargs)
    if "payload_indexes" in sections:
        sync_payload_indexes(client, name, desired["payload_indexes"], actual["payload_indexes"])
    if "aliases" in sections:
        sync_aliases(client, name, desired["aliases"], actual["aliases"])
