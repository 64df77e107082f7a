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
    description:
      - Name of the collection.
      - When O(name) is an alias (the RAG service's C(POST /collections/{name}/reindex) builds a new
        collection and moves the name over as an alias), the task manages the collection it points
        at, and the alias O(name) itself is kept; V(absent) and O(recreate) remove that collection.
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
      - Each item is an alias name; a mapping or a list as an item fails the task.
    type: list
    elements: str
  shard_number:
    description:
      - Shards of the collection in a distributed Qdrant cluster (the server defaults to one per
        node at creation). Fixed at creation; a different value is an immutable difference
        (O(recreate)).
    type: int
  replication_factor:
    description:
      - Copies of each shard on different peers of the cluster. Updated in place; Qdrant adds or
        drops replicas of existing shards as peers allow.
    type: int
  write_consistency_factor:
    description:
      - Replicas of a shard that must apply a write before it is acknowledged; at most
        O(replication_factor). Updated in place.
    type: int
  recreate:
    description:
      - When an immutable setting differs, drop the collection and create it again with the
        requested settings. B(All points of the collection are deleted.)
      - Without it such a difference fails the task and names the setting.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description:
      - Nothing is changed; RV(changes), RV(recreated) and RV(collection) show what the task
        would do and the configuration the collection would have.
  diff_mode:
    support: full
    description: Returns the collection's configuration before and after the task.
  platform:
    support: N/A
    platforms: posix
    description: Runs on the target host, which must reach the Qdrant server or hold O(path).
notes:
  - Embedded Qdrant (O(path)) keeps no HNSW index, optimizer, quantization, on-disk or payload
    index settings (payload indexes are accepted by it but have no effect). In that mode
    O(hnsw_config), O(optimizers_config), O(quantization_config), O(on_disk_payload),
    O(payload_indexes) and the C(on_disk) flags are ignored with a warning and never compared,
    so the same task works against embedded Qdrant and a server. So are O(shard_number),
    O(replication_factor) and O(write_consistency_factor), since embedded Qdrant is one process.
  - Snapshots and the placement of shards on peers (moving, replicating a given shard) are not
    managed by this module.
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

- name: Collection of a three-peer Qdrant cluster - 6 shards, 2 copies each, writes on both
  aistack.platform.qdrant_collection:
    url: http://qdrant.ai-stack.svc:6333
    api_key: "{{ vault_qdrant_api_key }}"
    name: documents
    vectors:
      dense: {size: 384, distance: Cosine}
    shard_number: 6
    replication_factor: 2
    write_consistency_factor: 2

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
    shard_number: 1
    replication_factor: 1
    write_consistency_factor: 1
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

from ansible.module_utils.basic import AnsibleModule, _load_params

from ansible_collections.aistack.platform.plugins.module_utils.qdrant import (
    QDRANT_CONNECTION_SPEC,
    QDRANT_MUTUALLY_EXCLUSIVE,
    connect,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.common import (
    CollectionError,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.manage import (
    error_message,
    manage_collection,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "vectors": {"type": "dict"},
    "sparse_vectors": {"type": "dict"},
    "hnsw_config": {
        "type": "dict",
        "options": {
            "m": {"type": "int"},
            "ef_construct": {"type": "int"},
            "full_scan_threshold": {"type": "int"},
            "max_indexing_threads": {"type": "int"},
            "on_disk": {"type": "bool"},
            "payload_m": {"type": "int"},
        },
    },
    "optimizers_config": {
        "type": "dict",
        "options": {
            "deleted_threshold": {"type": "float"},
            "vacuum_min_vector_number": {"type": "int"},
            "default_segment_number": {"type": "int"},
            "max_segment_size": {"type": "int"},
            "memmap_threshold": {"type": "int"},
            "indexing_threshold": {"type": "int"},
            "flush_interval_sec": {"type": "int"},
            "max_optimization_threads": {"type": "int"},
        },
    },
    "quantization_config": {
        "type": "dict",
        "options": {
            "type": {
                "type": "str",
                "required": True,
                "choices": ["scalar", "product", "binary", "disabled"],
            },
            "quantile": {"type": "float"},
            "compression": {"type": "str", "choices": ["x4", "x8", "x16", "x32", "x64"]},
            "always_ram": {"type": "bool"},
        },
    },
    "on_disk_payload": {"type": "bool"},
    "payload_indexes": {"type": "dict"},
    "aliases": {"type": "list", "elements": "str"},
    "shard_number": {"type": "int"},
    "replication_factor": {"type": "int"},
    "write_consistency_factor": {"type": "int"},
    "recreate": {"type": "bool", "default": False},
    # url, api_key (no_log), timeout, validate_certs, ca_cert, path: see the qdrant fragment.
    **copy.deepcopy(QDRANT_CONNECTION_SPEC),
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=QDRANT_MUTUALLY_EXCLUSIVE,
        required_one_of=[["url", "path"]],
        supports_check_mode=True,
    )
    # Ansible turns a mapping given as an alias into its repr; the raw value is checked.
    raw_aliases = _load_params().get("aliases")
    client = connect(module)
    try:
        result = manage_collection(
            module.params,
            client,
            check_mode=module.check_mode,
            warn=module.warn,
            raw_aliases=raw_aliases,
        )
    except CollectionError as exc:
        client.close()
        module.fail_json(msg=exc.msg, **exc.details)
    except Exception as exc:
        client.close()
        module.fail_json(msg=error_message(module.params, exc))
    client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
