# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired configuration of a collection, built from the module parameters.

Only the settings the task specifies are kept, so that only those are compared. Vectors are
normalised to ``{name: params}``, the unnamed vector under the name ``UNNAMED`` ('').
"""

from __future__ import annotations

import copy
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.common import (
    DISTANCES,
    EMBEDDED_IGNORED,
    MODIFIERS,
    PAYLOAD_SCHEMAS,
    SHARDING_KEYS,
    UNNAMED,
    ConfigError,
)


def _positive_int(value: Any, where: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value)
        if isinstance(value, float) and number != value:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise ConfigError(f"{where} must be a positive integer, got {value!r}")
    return number


def _bool(value: Any, where: str) -> bool:
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise ConfigError(f"{where} must be a boolean, got {value!r}") from None


def _reject_unknown(spec: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ConfigError(
            "{}: unsupported key(s) {} (expected {})".format(
                where, ", ".join(unknown), ", ".join(allowed)
            )
        )


def _vector_params(spec: Any, where: str) -> dict[str, Any]:
    """One dense vector's C(size), C(distance) and C(on_disk), validated."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a dict with size, distance and on_disk, got {spec!r}")
    _reject_unknown(spec, ("size", "distance", "on_disk"), where)
    if "size" not in spec:
        raise ConfigError(f"{where}.size is required")
    distance = str(spec.get("distance") or "Cosine")
    if distance.lower() not in DISTANCES:
        raise ConfigError(
            "{}.distance must be one of Cosine, Dot, Euclid, Manhattan, got {!r}".format(
                where, spec.get("distance")
            )
        )
    out: dict[str, Any] = {
        "size": _positive_int(spec["size"], where + ".size"),
        "distance": DISTANCES[distance.lower()],
    }
    if spec.get("on_disk") is not None:
        out["on_disk"] = _bool(spec["on_disk"], where + ".on_disk")
    return out


def desired_vectors(value: Any) -> dict[str, dict[str, Any]] | None:
    """Normalise O(vectors) to {name: params}; the unnamed vector is named ''."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"vectors must be a dict, got {value!r}")
    if "size" in value and not isinstance(value["size"], dict):
        return {UNNAMED: _vector_params(value, "vectors")}
    if not value:
        raise ConfigError("vectors must not be empty")
    return {str(name): _vector_params(spec, f"vectors.{name}") for name, spec in value.items()}


def _sparse_params(spec: Any, where: str) -> dict[str, Any]:
    """One sparse vector's C(modifier) and C(on_disk), validated (only those given)."""
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a dict with modifier and on_disk, got {spec!r}")
    _reject_unknown(spec, ("modifier", "on_disk"), where)
    entry: dict[str, Any] = {}
    if spec.get("modifier") is not None:
        modifier = str(spec["modifier"]).lower()
        if modifier not in MODIFIERS:
            raise ConfigError(
                "{}.modifier must be idf or none, got {!r}".format(where, spec["modifier"])
            )
        entry["modifier"] = modifier
    if spec.get("on_disk") is not None:
        entry["on_disk"] = _bool(spec["on_disk"], where + ".on_disk")
    return entry


def desired_sparse(value: Any) -> dict[str, dict[str, Any]] | None:
    """Normalise O(sparse_vectors) to {name: {modifier, on_disk}} (only the keys given)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(
            f"sparse_vectors must be a dict of name: {{modifier, on_disk}}, got {value!r}"
        )
    return {
        str(name): _sparse_params(spec, f"sparse_vectors.{name}") for name, spec in value.items()
    }


def desired_payload_indexes(value: Any) -> dict[str, str] | None:
    """Normalise O(payload_indexes) to {field: schema}, schemas lower-cased."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"payload_indexes must be a dict of field: schema, got {value!r}")
    out = {}
    for field, schema in value.items():
        schema_name = str(schema).lower()
        if schema_name not in PAYLOAD_SCHEMAS:
            raise ConfigError(
                "payload_indexes.{} must be one of {}, got {!r}".format(
                    field, ", ".join(PAYLOAD_SCHEMAS), schema
                )
            )
        out[str(field)] = schema_name
    return out


def _given(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """Only the suboptions the user set (Ansible fills the others with None)."""
    if section is None:
        return None
    return {key: value for key, value in section.items() if value is not None}


def desired_quantization(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """O(quantization_config) with only the keys given, checked against its C(type)."""
    quant = _given(value)
    if not quant:
        return None
    kind = quant["type"]
    if kind != "scalar" and "quantile" in quant:
        raise ConfigError("quantization_config.quantile applies to type scalar only")
    if kind != "product" and "compression" in quant:
        raise ConfigError("quantization_config.compression applies to type product only")
    if kind == "product" and "compression" not in quant:
        raise ConfigError("quantization_config.compression is required for type product")
    if kind == "disabled" and len(quant) > 1:
        raise ConfigError("quantization_config of type disabled takes no other keys")
    return quant


def check_alias_elements(raw: Any) -> None:
    """Rejects O(aliases) entries that are not names.

    Ansible converts every element of a C(elements=str) list to a string, a mapping or a list
    included (C({x: 2}) becomes C("{'x': 2}")), so the raw value of the option is checked.
    Scalars (C(1)) are names written without quotes and stay accepted.
    """
    if not isinstance(raw, (list, tuple)):
        return
    for item in raw:
        if isinstance(item, (dict, list, tuple, set)):
            kind = type(item).__name__
            raise ConfigError(
                f"aliases must be a list of alias names (strings), got {kind} {item!r}"
            )


def desired_sharding(params: dict[str, Any]) -> dict[str, int]:
    """O(shard_number), O(replication_factor), O(write_consistency_factor) as given; a write
    cannot wait for more copies than a shard has."""
    given = {
        key: _positive_int(params[key], key) for key in SHARDING_KEYS if params.get(key) is not None
    }
    factor, consistency = given.get("replication_factor"), given.get("write_consistency_factor")
    if factor is not None and consistency is not None and consistency > factor:
        raise ConfigError(
            f"write_consistency_factor ({consistency}) cannot exceed replication_factor ({factor})"
        )
    return given


def desired_state(params: dict[str, Any]) -> dict[str, Any]:
    """Normalised desired configuration: only the settings the task specifies."""
    sections: dict[str, Any] = {
        "vectors": desired_vectors(params.get("vectors")),
        "sparse_vectors": desired_sparse(params.get("sparse_vectors")),
        "hnsw_config": _given(params.get("hnsw_config")) or None,
        "optimizers_config": _given(params.get("optimizers_config")) or None,
        "quantization_config": desired_quantization(params.get("quantization_config")),
        "on_disk_payload": params.get("on_disk_payload"),
        "payload_indexes": desired_payload_indexes(params.get("payload_indexes")),
    }
    if params.get("aliases") is not None:
        sections["aliases"] = sorted(set(params["aliases"]))
    sections.update(desired_sharding(params))
    return {key: value for key, value in sections.items() if value is not None}


def drop_embedded_ignored(desired: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Remove settings embedded Qdrant does not keep; return them by name."""
    desired = copy.deepcopy(desired)
    ignored = [key for key in EMBEDDED_IGNORED if key in desired]
    for key in ignored:
        del desired[key]
    for section in ("vectors", "sparse_vectors"):
        for name, spec in (desired.get(section) or {}).items():
            if "on_disk" in spec:
                del spec["on_disk"]
                ignored.append(f"{section}.{name}.on_disk" if name else "vectors.on_disk")
    return desired, ignored
