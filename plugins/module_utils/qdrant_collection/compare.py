# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Differences between the desired and the actual configuration, and the predicted result.

Only the settings present in the desired state are compared. Immutable differences (vector
names, size, distance, sparse vector names) need a recreate; mutable ones are returned as
``(section, description)`` so that only the sections that differ are updated.
"""

from __future__ import annotations

import copy
from typing import Any

Immutable = list[str]
Mutable = list[tuple[str, str]]


def _fmt(value: Any) -> str:
    return "absent" if value is None else str(value)


def _vector_names(names: Any) -> list[str]:
    return sorted(n or "<unnamed>" for n in names)


def compare_vectors(
    want: dict[str, dict[str, Any]], have: dict[str, dict[str, Any]]
) -> tuple[Immutable, Mutable]:
    """Dense vectors: names, C(size) and C(distance) are immutable, C(on_disk) is not."""
    immutable: Immutable = []
    mutable: Mutable = []
    if set(want) != set(have):
        immutable.append(f"vectors (names {_vector_names(have)} -> {_vector_names(want)})")
    for name in sorted(set(want) & set(have)):
        label = f"vectors.{name}" if name else "vectors"
        for key in ("size", "distance"):
            if want[name][key] != have[name][key]:
                immutable.append(f"{label}.{key} ({have[name][key]} -> {want[name][key]})")
        if "on_disk" in want[name] and want[name]["on_disk"] != have[name]["on_disk"]:
            text = "{}.on_disk: {} -> {}".format(
                label, have[name]["on_disk"], want[name]["on_disk"]
            )
            mutable.append(("vectors", text))
    return immutable, mutable


def compare_sparse(
    want: dict[str, dict[str, Any]], have: dict[str, dict[str, Any]]
) -> tuple[Immutable, Mutable]:
    """Sparse vectors: names are immutable, C(modifier) and C(on_disk) are not."""
    immutable: Immutable = []
    mutable: Mutable = []
    if set(want) != set(have):
        immutable.append(f"sparse_vectors (names {sorted(have)} -> {sorted(want)})")
    for name in sorted(set(want) & set(have)):
        for key in ("modifier", "on_disk"):
            if key in want[name] and want[name][key] != have[name][key]:
                text = f"sparse_vectors.{name}.{key}: {have[name][key]} -> {want[name][key]}"
                mutable.append(("sparse_vectors", text))
    return immutable, mutable


def compare_index_settings(desired: dict[str, Any], actual: dict[str, Any]) -> Mutable:
    """O(hnsw_config) and O(optimizers_config), key by key."""
    mutable: Mutable = []
    for section in ("hnsw_config", "optimizers_config"):
        for key, value in (desired.get(section) or {}).items():
            current = actual[section].get(key)
            if current != value:
                mutable.append((section, f"{section}.{key}: {_fmt(current)} -> {value}"))
    return mutable


def compare_quantization(want: dict[str, Any], have: dict[str, Any] | None) -> Mutable:
    """O(quantization_config): switched off, another type, or other keys of the same type."""
    section = "quantization_config"
    if want["type"] == "disabled":
        if have is None:
            return []
        return [(section, "quantization_config: {} -> disabled".format(have["type"]))]
    if have is None or have.get("type") != want["type"]:
        have_type = _fmt(have and have["type"])
        return [(section, "quantization_config.type: {} -> {}".format(have_type, want["type"]))]
    return [
        (section, f"quantization_config.{key}: {_fmt(have.get(key))} -> {value}")
        for key, value in want.items()
        if have.get(key) != value
    ]


def compare_payload_indexes(desired: dict[str, Any], actual: dict[str, Any]) -> Mutable:
    """O(payload_indexes) missing or with another schema (indexes not listed are ignored)."""
    mutable: Mutable = []
    for field, schema in sorted((desired.get("payload_indexes") or {}).items()):
        current = actual["payload_indexes"].get(field)
        if current != schema:
            mutable.append(
                ("payload_indexes", f"payload_indexes.{field}: {_fmt(current)} -> {schema}")
            )
    return mutable


def compare_collection_params(desired: dict[str, Any], actual: dict[str, Any]) -> Mutable:
    """O(on_disk_payload), then the payload indexes, then O(aliases)."""
    mutable: Mutable = []
    want_payload = desired.get("on_disk_payload")
    if "on_disk_payload" in desired and bool(actual["on_disk_payload"]) != want_payload:
        text = "on_disk_payload: {} -> {}".format(actual["on_disk_payload"], want_payload)
        mutable.append(("on_disk_payload", text))
    mutable += compare_payload_indexes(desired, actual)
    if "aliases" in desired and desired["aliases"] != actual["aliases"]:
        mutable.append(
            ("aliases", "aliases: {} -> {}".format(actual["aliases"], desired["aliases"]))
        )
    return mutable


def compare_sharding(desired: dict[str, Any], actual: dict[str, Any]) -> tuple[Immutable, Mutable]:
    """O(shard_number) is fixed at creation; O(replication_factor) and
    O(write_consistency_factor) are collection parameters a server updates in place."""
    immutable: Immutable = []
    mutable: Mutable = []
    for key in ("shard_number", "replication_factor", "write_consistency_factor"):
        if key not in desired or actual.get(key) == desired[key]:
            continue
        if key == "shard_number":
            immutable.append(f"shard_number ({_fmt(actual.get(key))} -> {desired[key]})")
        else:
            mutable.append((key, f"{key}: {_fmt(actual.get(key))} -> {desired[key]}"))
    return immutable, mutable


def compare(desired: dict[str, Any], actual: dict[str, Any]) -> tuple[Immutable, Mutable]:
    """Differences between desired (given settings only) and actual.

    Returns (immutable differences, mutable differences as (section, description)).
    """
    immutable: Immutable = []
    mutable: Mutable = []
    for section, compare_section in (
        ("vectors", compare_vectors),
        ("sparse_vectors", compare_sparse),
    ):
        if section in desired:
            fixed, changeable = compare_section(desired[section], actual[section])
            immutable += fixed
            mutable += changeable
    mutable += compare_index_settings(desired, actual)
    if "quantization_config" in desired:
        mutable += compare_quantization(
            desired["quantization_config"], actual["quantization_config"]
        )
    mutable += compare_collection_params(desired, actual)
    fixed, changeable = compare_sharding(desired, actual)
    return immutable + fixed, mutable + changeable


def empty_state() -> dict[str, Any]:
    """The normalised state of a collection that has only its defaults."""
    return {
        "vectors": {},
        "sparse_vectors": {},
        "hnsw_config": {},
        "optimizers_config": {},
        "quantization_config": None,
        "on_disk_payload": None,
        "payload_indexes": {},
        "aliases": [],
        "shard_number": None,
        "replication_factor": None,
        "write_consistency_factor": None,
    }


def _merge_vectors(after: dict[str, Any], desired: dict[str, Any]) -> None:
    """The given vector layouts replace the current ones; unset flags keep Qdrant defaults."""
    for section in ("vectors", "sparse_vectors"):
        if section not in desired:
            continue
        base = (
            {"on_disk": False} if section == "vectors" else {"modifier": "none", "on_disk": False}
        )
        after[section] = {
            name: {**base, **after[section].get(name, {}), **spec}
            for name, spec in desired[section].items()
        }


def predict(desired: dict[str, Any], actual: dict[str, Any] | None) -> dict[str, Any]:
    """The configuration the collection has after applying ``desired`` (for check mode / diff)."""
    after = copy.deepcopy(actual) if actual else empty_state()
    _merge_vectors(after, desired)
    for section in ("hnsw_config", "optimizers_config"):
        after[section] = {**after[section], **desired.get(section, {})}
    if "quantization_config" in desired:
        quant = desired["quantization_config"]
        after["quantization_config"] = None if quant["type"] == "disabled" else dict(quant)
    if "on_disk_payload" in desired:
        after["on_disk_payload"] = desired["on_disk_payload"]
    if "payload_indexes" in desired:
        after["payload_indexes"] = {**after["payload_indexes"], **desired["payload_indexes"]}
    if "aliases" in desired:
        after["aliases"] = list(desired["aliases"])
    for key in ("shard_number", "replication_factor", "write_consistency_factor"):
        if key in desired:
            after[key] = desired[key]
    return after
