# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Constants and exceptions shared by the qdrant_collection module_utils."""

from __future__ import annotations

from typing import Any

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
# Distributed mode (a Qdrant cluster): shards per collection, copies per shard, and copies a
# write must reach. The shard number is fixed at creation; the other two can be updated.
SHARDING_KEYS = ("shard_number", "replication_factor", "write_consistency_factor")
# Settings that embedded Qdrant accepts but neither keeps nor applies.
EMBEDDED_IGNORED = (
    *SHARDING_KEYS,
    "hnsw_config",
    "optimizers_config",
    "quantization_config",
    "on_disk_payload",
    "payload_indexes",
)
# Key of the unnamed vector in the normalised {name: params} form.
UNNAMED = ""


class ConfigError(ValueError):
    """Invalid option value (fails the task before anything is changed)."""


class CollectionError(Exception):
    """The task fails with ``msg``; ``details`` are returned with it (the result so far)."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details
