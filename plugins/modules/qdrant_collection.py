#!/usr/bin/python
# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: qdrant_collection
short_description: Create, update or delete a Qdrant collection
version_added: "0.1.0"
description:
  - Manages one Qdrant collection on a Qdrant server (O(url)) or in embedded Qdrant on disk
    (O(path)) - dense and sparse vector layout, HNSW, optimizer and quantization settings,
    payload indexes and aliases.
  - Idempotent. Only the settings given in the task are compared with the collection's
    effective configuration; when they are equal the task reports C(changed=false).
  - Mutable settings (O(hnsw_config), O(optimizers_config), O(quantization_config),
    O(on_disk_payload), the C(on_disk) flags, sparse vector modifiers, O(payload_indexes),
    O(aliases)) are updated in place.
  - Immutable settings (vector names, vector C(size) and C(distance), sparse vector names)
    cannot be changed on an existing collection. A difference fails the task naming the
    setting, unless O(recreate=true), which drops the collection (and all its points) and
    creates it again.
author:
  - aistack.platform contributors (@aistack-platform)
extends_documentation_fragment:
  - aistack.platform.qdrant
options:
  name:
    description: Name of the collection.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the collection; V(absent) deletes it with all its points.
    type: str
    choices: [present, absent]
    default: present
  vectors:
    description:
      - Dense vector layout. Either one unnamed vector, a mapping with the keys C(size),
        C(distance) and C(on_disk); or named vectors, a mapping of vector name to such a mapping.
      - C(size) (integer, required) is the dimension; C(distance) is one of C(Cosine),
        C(Dot), C(Euclid), C(Manhattan) (case-insensitive, default C(Cosine)); C(on_disk)
        (boolean) keeps the vectors in memory-mapped storage.
      - Required to create a collection unless O(sparse_vectors) is given. Vector names,
        C(size) and C(distance) are immutable; C(on_disk) is updated in place.
    type: dict
  sparse_vectors:
    description:
      - Sparse vectors, a mapping of sparse vector name to a mapping with the keys
        C(modifier) and C(on_disk). C(modifier) is V(idf) (IDF computed
        by Qdrant at query time, for BM25-like scoring) or V(none) (default); C(on_disk)
        keeps the sparse index on disk.
      - Sparse vector names are immutable; C(modifier) and C(on_disk) are updated in place.
    type: dict
  hnsw_config:
    description: HNSW index parameters. Only the keys given are compared and updated.
    type: dict
    suboptions:
      m:
        description: Edges per node in the index graph.
        type: int
      ef_construct:
        description: Number of neighbours considered while building the index.
        type: int
      full_scan_threshold:
        description: Payload-filtered searches below this size (in KiB) use a full scan.
        type: int
      max_indexing_threads:
        description: Threads used to build the index (V(0) picks automatically).
        type: int
      on_disk:
        description: Store the HNSW index on disk.
        type: bool
      payload_m:
        description: Edges per node of the payload-aware index graphs.
        type: int
  optimizers_config:
    description: Optimizer parameters. Only the keys given are compared and updated.
    type: dict
    suboptions:
      deleted_threshold:
        description: Fraction of deleted vectors in a segment that triggers its vacuum.
        type: float
      vacuum_min_vector_number:
        description: Minimum number of vectors in a segment before it is vacuumed.
        type: int
      default_segment_number:
        description: Target number of segments (V(0) picks automatically).
        type: int
      max_segment_size:
        description: Maximum segment size in KiB.
        type: int
      memmap_threshold:
        description: Segment size in KiB above which vectors are memory-mapped.
        type: int
      indexing_threshold:
        description:
          - Segment size in KiB above which an HNSW index is built (V(0) disables indexing).
        type: int
      flush_interval_sec:
        description: Interval between forced flushes, in seconds.
        type: int
      max_optimization_threads:
        description: Threads used by the optimizers per shard.
        type: int
  quantization_config:
    description:
      - Vector quantization. V(disabled) removes an existing quantization.
    type: dict
    suboptions:
      type:
        description: Kind of quantization.
        type: str
        required: true
        choices: [scalar, product, binary, disabled]
      quantile:
        description: Quantile used to clip outliers (V(scalar) only), between 0.5 and 1.
        type: float
      compression:
        description: Compression ratio (V(product) only).
        type: str
        choices: [x4, x8, x16, x32, x64]
      always_ram:
        description: Keep the quantized vectors in RAM.
        type: bool
  on_disk_payload:
    description: Store payloads on disk instead of in memory.
    type: bool
  payload_indexes:
    description:
      - Payload indexes, a mapping of payload field to index schema, one of C(keyword), C(integer),
        C(float), C(bool), C(geo), C(datetime), C(text), C(uuid).
      - Missing indexes are created and indexes with another schema are rebuilt. Indexes not
        listed are left alone.
    type: dict
  aliases:
    description:
      - The complete list of aliases that point at this collection. Missing aliases are created
        (an alias that points at another collection is moved here, atomically); aliases of this
        collection that are not listed are removed.
      - Leave unset to leave aliases alone; V([]) removes all of them.
    type: list
    elements: str
  recreate:
    description:
      - When an immutable setting differs, drop the collection and create it again with the
        requested settings. B(All points of the collection are deleted.)
      - Without it such a difference fails the task and names the setting.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode. In check mode nothing is changed and RV(collection)
    shows the configuration the collection would have.
  - Embedded Qdrant (O(path)) keeps no HNSW index, optimizer, quantization, on-disk or payload
    index settings (payload indexes are accepted by it but have no effect). In that mode
    O(hnsw_config), O(optimizers_config), O(quantization_config), O(on_disk_payload),
    O(payload_indexes) and the C(on_disk) flags are ignored with a warning and never compared,
    so the same task works against embedded Qdrant and a server.
  - Snapshots and sharding are not managed by this module.
seealso:
  - module: aistack.platform.document_ingest
  - name: Qdrant collections
    description: Qdrant documentation of collection parameters.
    link: https://qdrant.tech/documentation/concepts/collections/
"""

EXAMPLES = r"""
- name: Collection of the RAG service (named dense vector + BM25 sparse vector)
  aistack.platform.qdrant_collection:
    url: http://qdrant.ai-stack.svc:6333
    api_key: "{{ vault_qdrant_api_key }}"
    name: documents
    vectors:
      dense: {size: 384, distance: Cosine}
    sparse_vectors:
      bm25: {modifier: idf}
    payload_indexes:
      document_id: keyword
      content_hash: keyword
    aliases: [documents-current]

- name: Same collection in embedded Qdrant on disk (no server)
  aistack.platform.qdrant_collection:
    path: /var/lib/aistack/qdrant
    name: documents
    vectors:
      dense: {size: 384, distance: Cosine}
    sparse_vectors:
      bm25: {modifier: idf}

- name: One unnamed vector, tuned index and scalar quantization over TLS with a private CA
  aistack.platform.qdrant_collection:
    url: https://qdrant.example.com:6333
    ca_cert: /etc/pki/aistack/ca.pem
    name: images
    vectors: {size: 512, distance: Dot, on_disk: true}
    hnsw_config: {m: 32, ef_construct: 200}
    optimizers_config: {indexing_threshold: 50000}
    quantization_config: {type: scalar, quantile: 0.99, always_ram: true}
    on_disk_payload: true

- name: Change the embedding model (new dimension) - drops all points
  aistack.platform.qdrant_collection:
    url: http://localhost:6333
    name: documents
    vectors:
      dense: {size: 768, distance: Cosine}
    recreate: true

- name: Remove the collection
  aistack.platform.qdrant_collection:
    url: http://localhost:6333
    name: scratch
    state: absent
"""

RETURN = r"""
collection:
  description:
    - Effective configuration of the collection after the task (in check mode, the
      configuration it would have). Empty when the collection does not exist.
    - C(vectors) has the shape of O(vectors) (unnamed or named), C(distance) capitalised as
      Qdrant reports it.
  returned: always
  type: dict
  sample:
    name: documents
    status: green
    vectors: {dense: {size: 384, distance: Cosine, on_disk: false}}
    sparse_vectors: {bm25: {modifier: idf, on_disk: false}}
    hnsw_config: {m: 16, ef_construct: 100, full_scan_threshold: 10000}
    optimizers_config: {indexing_threshold: 20000}
    quantization_config: null
    on_disk_payload: true
    payload_indexes: {document_id: keyword}
    aliases: [documents-current]
points_count:
  description: Number of points in the collection (0 when it does not exist).
  returned: always
  type: int
  sample: 1250
changes:
  description:
    - What was (or in check mode would be) changed, one line per setting, for example
      C(create), C(hnsw_config.m 16 -> 32) or C(recreate vectors.dense.size 384 -> 768),
      written with a colon after the setting name.
  returned: always
  type: list
  elements: str
recreated:
  description: Whether the collection was (or would be) dropped and created again.
  returned: always
  type: bool
ignored:
  description: Options given in the task that embedded Qdrant ignores (see notes).
  returned: always
  type: list
  elements: str
  sample: [hnsw_config, payload_indexes]
"""

import copy
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.aistack.platform.plugins.module_utils.qdrant import (
    QDRANT_CONNECTION_SPEC,
    QDRANT_MUTUALLY_EXCLUSIVE,
    connect,
    connection_error_message,
    is_embedded,
)

try:
    from qdrant_client import models
except ImportError:  # pragma: no cover - reported by connect()
    models = None  # type: ignore[assignment]

DISTANCES = {
    "cosine": "Cosine",
    "dot": "Dot",
    "euclid": "Euclid",
    "euclidean": "Euclid",
    "manhattan": "Manhattan",
}
MODIFIERS = ("idf", "none")
PAYLOAD_SCHEMAS = ("keyword", "integer", "float", "bool", "geo", "datetime", "text", "uuid")
HNSW_KEYS = (
    "m",
    "ef_construct",
    "full_scan_threshold",
    "max_indexing_threads",
    "on_disk",
    "payload_m",
)
OPTIMIZER_KEYS = (
    "deleted_threshold",
    "vacuum_min_vector_number",
    "default_segment_number",
    "max_segment_size",
    "memmap_threshold",
    "indexing_threshold",
    "flush_interval_sec",
    "max_optimization_threads",
)
# Settings that embedded Qdrant accepts but neither keeps nor applies.
EMBEDDED_IGNORED = (
    "hnsw_config",
    "optimizers_config",
    "quantization_config",
    "on_disk_payload",
    "payload_indexes",
)
UNNAMED = ""


class ConfigError(ValueError):
    """Invalid option value (fails the task before anything is changed)."""


class ImmutableError(ValueError):
    """An immutable setting differs from the existing collection."""


# --------------------------------------------------------------------------- desired state


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


def _vector_params(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a dict with size, distance and on_disk, got {spec!r}")
    unknown = sorted(set(spec) - {"size", "distance", "on_disk"})
    if unknown:
        raise ConfigError(
            "{}: unsupported key(s) {} (expected size, distance, on_disk)".format(
                where, ", ".join(unknown)
            )
        )
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


def desired_sparse(value: Any) -> dict[str, dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(
            f"sparse_vectors must be a dict of name: {{modifier, on_disk}}, got {value!r}"
        )
    out: dict[str, dict[str, Any]] = {}
    for name, spec in value.items():
        where = f"sparse_vectors.{name}"
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a dict with modifier and on_disk, got {spec!r}")
        unknown = sorted(set(spec) - {"modifier", "on_disk"})
        if unknown:
            raise ConfigError(
                "{}: unsupported key(s) {} (expected modifier, on_disk)".format(
                    where, ", ".join(unknown)
                )
            )
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
        out[str(name)] = entry
    return out


def desired_payload_indexes(value: Any) -> dict[str, str] | None:
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


def desired_state(params: dict[str, Any]) -> dict[str, Any]:
    """Normalised desired configuration: only the settings the task specifies."""
    desired: dict[str, Any] = {}
    vectors = desired_vectors(params.get("vectors"))
    if vectors is not None:
        desired["vectors"] = vectors
    sparse = desired_sparse(params.get("sparse_vectors"))
    if sparse is not None:
        desired["sparse_vectors"] = sparse
    for key in ("hnsw_config", "optimizers_config"):
        section = _given(params.get(key))
        if section:
            desired[key] = section
    quant = _given(params.get("quantization_config"))
    if quant:
        kind = quant["type"]
        if kind != "scalar" and "quantile" in quant:
            raise ConfigError("quantization_config.quantile applies to type scalar only")
        if kind != "product" and "compression" in quant:
            raise ConfigError("quantization_config.compression applies to type product only")
        if kind == "product" and "compression" not in quant:
            raise ConfigError("quantization_config.compression is required for type product")
        if kind == "disabled" and len(quant) > 1:
            raise ConfigError("quantization_config of type disabled takes no other keys")
        desired["quantization_config"] = quant
    if params.get("on_disk_payload") is not None:
        desired["on_disk_payload"] = params["on_disk_payload"]
    indexes = desired_payload_indexes(params.get("payload_indexes"))
    if indexes is not None:
        desired["payload_indexes"] = indexes
    if params.get("aliases") is not None:
        desired["aliases"] = sorted(set(params["aliases"]))
    return desired


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


# --------------------------------------------------------------------------- actual state


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


def actual_state(info: Any, aliases: list[str]) -> dict[str, Any]:
    """Normalise qdrant-client's CollectionInfo to plain dicts (same keys as desired_state)."""
    params = info.config.params
    raw_vectors = params.vectors
    vectors: dict[str, dict[str, Any]] = {}
    if raw_vectors is not None and hasattr(raw_vectors, "size"):
        raw_vectors = {UNNAMED: raw_vectors}
    for name, spec in (raw_vectors or {}).items():
        vectors[name] = {
            "size": spec.size,
            "distance": _enum(spec.distance),
            "on_disk": bool(spec.on_disk),
        }
    sparse: dict[str, dict[str, Any]] = {}
    for name, spec in (params.sparse_vectors or {}).items():
        sparse[name] = {
            "modifier": _enum(spec.modifier) if spec.modifier is not None else "none",
            "on_disk": bool(spec.index.on_disk)
            if spec.index is not None and spec.index.on_disk is not None
            else False,
        }
    hnsw = info.config.hnsw_config.model_dump(exclude_none=True) if info.config.hnsw_config else {}
    optimizers = (
        info.config.optimizer_config.model_dump(exclude_none=True)
        if info.config.optimizer_config
        else {}
    )
    optimizers = {key: _enum(value) for key, value in optimizers.items()}
    return {
        "vectors": vectors,
        "sparse_vectors": sparse,
        "hnsw_config": {key: value for key, value in hnsw.items() if key in HNSW_KEYS},
        "optimizers_config": {
            key: value for key, value in optimizers.items() if key in OPTIMIZER_KEYS
        },
        "quantization_config": _quantization_to_dict(info.config.quantization_config),
        "on_disk_payload": params.on_disk_payload,
        "payload_indexes": {
            field: _enum(index.data_type) for field, index in (info.payload_schema or {}).items()
        },
        "aliases": sorted(aliases),
    }


def public_view(name: str, state: dict[str, Any], status: Any = None) -> dict[str, Any]:
    """The RV(collection) shape: the unnamed vector is shown as a plain dict."""
    if not state:
        return {}
    view = copy.deepcopy(state)
    vectors = view.get("vectors") or {}
    if list(vectors) == [UNNAMED]:
        view["vectors"] = vectors[UNNAMED]
    view = {"name": name, "status": _enum(status) if status is not None else None, **view}
    return view


# --------------------------------------------------------------------------- comparison


def _fmt(value: Any) -> str:
    return "absent" if value is None else str(value)


def compare(
    desired: dict[str, Any], actual: dict[str, Any]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Differences between desired (given settings only) and actual.

    Returns (immutable differences, mutable differences as (section, description)).
    """
    immutable: list[str] = []
    mutable: list[tuple[str, str]] = []

    if "vectors" in desired:
        want, have = desired["vectors"], actual["vectors"]
        if set(want) != set(have):
            immutable.append(
                "vectors (names {} -> {})".format(
                    sorted(n or "<unnamed>" for n in have), sorted(n or "<unnamed>" for n in want)
                )
            )
        for name in sorted(set(want) & set(have)):
            label = f"vectors.{name}" if name else "vectors"
            for key in ("size", "distance"):
                if want[name][key] != have[name][key]:
                    immutable.append(f"{label}.{key} ({have[name][key]} -> {want[name][key]})")
            if "on_disk" in want[name] and want[name]["on_disk"] != have[name]["on_disk"]:
                mutable.append(
                    (
                        "vectors",
                        "{}.on_disk: {} -> {}".format(
                            label, have[name]["on_disk"], want[name]["on_disk"]
                        ),
                    )
                )

    if "sparse_vectors" in desired:
        want, have = desired["sparse_vectors"], actual["sparse_vectors"]
        if set(want) != set(have):
            immutable.append(f"sparse_vectors (names {sorted(have)} -> {sorted(want)})")
        for name in sorted(set(want) & set(have)):
            for key in ("modifier", "on_disk"):
                if key in want[name] and want[name][key] != have[name][key]:
                    mutable.append(
                        (
                            "sparse_vectors",
                            f"sparse_vectors.{name}.{key}: {have[name][key]} -> {want[name][key]}",
                        )
                    )

    for section in ("hnsw_config", "optimizers_config"):
        for key, value in (desired.get(section) or {}).items():
            current = actual[section].get(key)
            if current != value:
                mutable.append((section, f"{section}.{key}: {_fmt(current)} -> {value}"))

    if "quantization_config" in desired:
        want_q = desired["quantization_config"]
        have_q = actual["quantization_config"]
        if want_q["type"] == "disabled":
            if have_q is not None:
                mutable.append(
                    (
                        "quantization_config",
                        "quantization_config: {} -> disabled".format(have_q["type"]),
                    )
                )
        elif have_q is None or have_q.get("type") != want_q["type"]:
            mutable.append(
                (
                    "quantization_config",
                    "quantization_config.type: {} -> {}".format(
                        _fmt(have_q and have_q["type"]), want_q["type"]
                    ),
                )
            )
        else:
            for key, value in want_q.items():
                if have_q.get(key) != value:
                    mutable.append(
                        (
                            "quantization_config",
                            f"quantization_config.{key}: {_fmt(have_q.get(key))} -> {value}",
                        )
                    )

    if (
        "on_disk_payload" in desired
        and bool(actual["on_disk_payload"]) != desired["on_disk_payload"]
    ):
        mutable.append(
            (
                "on_disk_payload",
                "on_disk_payload: {} -> {}".format(
                    actual["on_disk_payload"], desired["on_disk_payload"]
                ),
            )
        )

    for field, schema in sorted((desired.get("payload_indexes") or {}).items()):
        current = actual["payload_indexes"].get(field)
        if current != schema:
            mutable.append(
                (
                    "payload_indexes",
                    f"payload_indexes.{field}: {_fmt(current)} -> {schema}",
                )
            )

    if "aliases" in desired and desired["aliases"] != actual["aliases"]:
        mutable.append(
            ("aliases", "aliases: {} -> {}".format(actual["aliases"], desired["aliases"]))
        )

    return immutable, mutable


def predict(desired: dict[str, Any], actual: dict[str, Any] | None) -> dict[str, Any]:
    """The configuration the collection has after applying ``desired`` (for check mode / diff)."""
    after: dict[str, Any] = (
        copy.deepcopy(actual)
        if actual
        else {
            "vectors": {},
            "sparse_vectors": {},
            "hnsw_config": {},
            "optimizers_config": {},
            "quantization_config": None,
            "on_disk_payload": None,
            "payload_indexes": {},
            "aliases": [],
        }
    )
    for section in ("vectors", "sparse_vectors"):
        if section in desired:
            merged = {}
            for name, spec in desired[section].items():
                base = (
                    {"on_disk": False}
                    if section == "vectors"
                    else {"modifier": "none", "on_disk": False}
                )
                merged[name] = {**base, **after[section].get(name, {}), **spec}
            after[section] = merged
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
    return after


# --------------------------------------------------------------------------- qdrant-client models


def _vector_models(vectors: dict[str, dict[str, Any]]) -> Any:
    made = {
        name: models.VectorParams(
            size=spec["size"],
            distance=models.Distance(spec["distance"]),
            on_disk=spec.get("on_disk"),
        )
        for name, spec in vectors.items()
    }
    return made[UNNAMED] if list(made) == [UNNAMED] else made


def _sparse_models(sparse: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        name: models.SparseVectorParams(
            modifier=models.Modifier(spec.get("modifier", "none")),
            index=models.SparseIndexParams(on_disk=spec["on_disk"]) if "on_disk" in spec else None,
        )
        for name, spec in sparse.items()
    }


def _quantization_model(quant: dict[str, Any]) -> Any:
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


def _alias_operations(
    name: str, want: list[str], have: list[str], all_aliases: dict[str, str]
) -> list[Any]:
    ops: list[Any] = []
    for alias in sorted(set(have) - set(want)):
        ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    for alias in sorted(set(want) - set(have)):
        if alias in all_aliases:  # points at another collection: move it (same atomic batch)
            ops.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        ops.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=name, alias_name=alias)
            )
        )
    return ops


class CollectionManager:
    """Thin layer over QdrantClient that applies desired settings."""

    def __init__(self, client: Any, name: str, embedded: bool) -> None:
        self.client = client
        self.name = name
        self.embedded = embedded

    def exists(self) -> bool:
        return bool(self.client.collection_exists(self.name))

    def all_aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def read(self) -> tuple[dict[str, Any], Any, int]:
        info = self.client.get_collection(self.name)
        aliases = [a.alias_name for a in self.client.get_collection_aliases(self.name).aliases]
        points = info.points_count
        if points is None:
            points = self.client.count(self.name, exact=True).count
        return actual_state(info, aliases), info.status, int(points or 0)

    def create(self, desired: dict[str, Any]) -> None:
        kwargs: dict[str, Any] = {
            "vectors_config": _vector_models(desired["vectors"]) if desired.get("vectors") else {},
        }
        if desired.get("sparse_vectors"):
            kwargs["sparse_vectors_config"] = _sparse_models(desired["sparse_vectors"])
        if desired.get("hnsw_config"):
            kwargs["hnsw_config"] = models.HnswConfigDiff(**desired["hnsw_config"])
        if desired.get("optimizers_config"):
            kwargs["optimizers_config"] = models.OptimizersConfigDiff(
                **desired["optimizers_config"]
            )
        quant = desired.get("quantization_config")
        if quant and quant["type"] != "disabled":
            kwargs["quantization_config"] = _quantization_model(quant)
        if "on_disk_payload" in desired:
            kwargs["on_disk_payload"] = desired["on_disk_payload"]
        self.client.create_collection(self.name, **kwargs)
        for field, schema in sorted((desired.get("payload_indexes") or {}).items()):
            self.client.create_payload_index(
                self.name, field, field_schema=models.PayloadSchemaType(schema), wait=True
            )
        if desired.get("aliases"):
            ops = _alias_operations(self.name, desired["aliases"], [], self.all_aliases())
            self.client.update_collection_aliases(change_aliases_operations=ops)

    def update(self, desired: dict[str, Any], actual: dict[str, Any], sections: set[str]) -> None:
        kwargs: dict[str, Any] = {}
        if "vectors" in sections:
            kwargs["vectors_config"] = {
                name: models.VectorParamsDiff(on_disk=spec["on_disk"])
                for name, spec in desired["vectors"].items()
                if "on_disk" in spec and spec["on_disk"] != actual["vectors"][name]["on_disk"]
            }
        if "sparse_vectors" in sections:
            changed = {}
            for name, spec in desired["sparse_vectors"].items():
                have = actual["sparse_vectors"][name]
                if any(key in spec and spec[key] != have[key] for key in ("modifier", "on_disk")):
                    changed[name] = models.SparseVectorParams(
                        modifier=models.Modifier(spec.get("modifier", have["modifier"])),
                        index=models.SparseIndexParams(on_disk=spec["on_disk"])
                        if "on_disk" in spec
                        else None,
                    )
            kwargs["sparse_vectors_config"] = changed
        if "hnsw_config" in sections:
            kwargs["hnsw_config"] = models.HnswConfigDiff(**desired["hnsw_config"])
        if "optimizers_config" in sections:
            kwargs["optimizers_config"] = models.OptimizersConfigDiff(
                **desired["optimizers_config"]
            )
        if "quantization_config" in sections:
            kwargs["quantization_config"] = _quantization_model(desired["quantization_config"])
        if "on_disk_payload" in sections:
            kwargs["collection_params"] = models.CollectionParamsDiff(
                on_disk_payload=desired["on_disk_payload"]
            )
        if kwargs:
            self.client.update_collection(self.name, **kwargs)
        if "payload_indexes" in sections:
            for field, schema in sorted(desired["payload_indexes"].items()):
                current = actual["payload_indexes"].get(field)
                if current == schema:
                    continue
                if current is not None:
                    self.client.delete_payload_index(self.name, field, wait=True)
                self.client.create_payload_index(
                    self.name, field, field_schema=models.PayloadSchemaType(schema), wait=True
                )
        if "aliases" in sections:
            ops = _alias_operations(
                self.name, desired["aliases"], actual["aliases"], self.all_aliases()
            )
            if ops:
                self.client.update_collection_aliases(change_aliases_operations=ops)

    def delete(self) -> None:
        self.client.delete_collection(self.name)


# --------------------------------------------------------------------------- module


def run(module: AnsibleModule, client: Any) -> dict[str, Any]:
    params = module.params
    name = params["name"]
    embedded = is_embedded(params)
    result: dict[str, Any] = {
        "changed": False,
        "collection": {},
        "points_count": 0,
        "changes": [],
        "recreated": False,
        "ignored": [],
    }
    try:
        desired = desired_state(params) if params["state"] == "present" else {}
    except ConfigError as exc:
        module.fail_json(msg=f"Invalid options for collection {name}: {exc}", **result)
    if embedded and desired:
        desired, ignored = drop_embedded_ignored(desired)
        if ignored:
            result["ignored"] = ignored
            module.warn(
                "Embedded Qdrant (path) does not keep {}: not applied and not compared. "
                "They take effect against a Qdrant server (url).".format(", ".join(ignored))
            )

    manager = CollectionManager(client, name, embedded)
    exists = manager.exists()
    before, status, points = manager.read() if exists else ({}, None, 0)
    result["points_count"] = points

    if params["state"] == "absent":
        if exists:
            result["changed"] = True
            result["changes"] = [f"delete ({points} points)"]
            if not module.check_mode:
                manager.delete()
        result["collection"] = {} if result["changed"] else public_view(name, before, status)
        if result["changed"]:
            result["points_count"] = 0
            result["diff"] = {"before": public_view(name, before, status), "after": {}}
        return result

    recreate = False
    sections: set[str] = set()
    if not exists:
        if not desired.get("vectors") and not desired.get("sparse_vectors"):
            module.fail_json(
                msg=f"Collection {name} does not exist: vectors (or sparse_vectors) is "
                "required to create it",
                **result,
            )
        result["changes"] = ["create"]
    else:
        immutable, mutable = compare(desired, before)
        if immutable:
            if not params["recreate"]:
                module.fail_json(
                    msg="Collection {}: immutable setting(s) differ: {}. Set recreate: true to "
                    "drop and recreate the collection (its {} points are deleted).".format(
                        name, "; ".join(immutable), points
                    ),
                    immutable=immutable,
                    **result,
                )
            recreate = True
            result["changes"] = [f"recreate: {item}" for item in immutable]
        else:
            sections = {section for section, _text in mutable}
            result["changes"] = [text for _section, text in mutable]

    result["changed"] = bool(result["changes"])
    if not result["changed"]:
        result["collection"] = public_view(name, before, status)
        return result

    result["recreated"] = recreate
    if module.check_mode:
        after = predict(desired, None if (recreate or not exists) else before)
        after_status = status if exists and not recreate else None
        result["points_count"] = 0 if recreate else points
    else:
        if recreate:
            manager.delete()
        if recreate or not exists:
            manager.create(desired)
        else:
            manager.update(desired, before, sections)
        after, after_status, result["points_count"] = manager.read()
    result["collection"] = public_view(name, after, after_status)
    result["diff"] = {
        "before": public_view(name, before, status),
        "after": public_view(name, after, after_status),
    }
    return result


def main() -> None:
    argument_spec: dict[str, Any] = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        vectors=dict(type="dict"),
        sparse_vectors=dict(type="dict"),
        hnsw_config=dict(
            type="dict",
            options=dict(
                m=dict(type="int"),
                ef_construct=dict(type="int"),
                full_scan_threshold=dict(type="int"),
                max_indexing_threads=dict(type="int"),
                on_disk=dict(type="bool"),
                payload_m=dict(type="int"),
            ),
        ),
        optimizers_config=dict(
            type="dict",
            options=dict(
                deleted_threshold=dict(type="float"),
                vacuum_min_vector_number=dict(type="int"),
                default_segment_number=dict(type="int"),
                max_segment_size=dict(type="int"),
                memmap_threshold=dict(type="int"),
                indexing_threshold=dict(type="int"),
                flush_interval_sec=dict(type="int"),
                max_optimization_threads=dict(type="int"),
            ),
        ),
        quantization_config=dict(
            type="dict",
            options=dict(
                type=dict(
                    type="str", required=True, choices=["scalar", "product", "binary", "disabled"]
                ),
                quantile=dict(type="float"),
                compression=dict(type="str", choices=["x4", "x8", "x16", "x32", "x64"]),
                always_ram=dict(type="bool"),
            ),
        ),
        on_disk_payload=dict(type="bool"),
        payload_indexes=dict(type="dict"),
        aliases=dict(type="list", elements="str"),
        recreate=dict(type="bool", default=False),
    )
    argument_spec.update(copy.deepcopy(QDRANT_CONNECTION_SPEC))
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=QDRANT_MUTUALLY_EXCLUSIVE,
        required_one_of=[["url", "path"]],
        supports_check_mode=True,
    )
    client = connect(module)
    try:
        result = run(module, client)
    except Exception as exc:
        message = connection_error_message(
            module.params, exc
        ) or "Qdrant error on collection {}: {}".format(module.params["name"], to_native(exc))
        client.close()
        module.fail_json(msg=message)
    client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
