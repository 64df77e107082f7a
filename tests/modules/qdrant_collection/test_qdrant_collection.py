"""aistack.platform.qdrant_collection: unit tests and integration tests on embedded Qdrant.

Embedded Qdrant keeps only the vector layout, sparse modifiers and aliases, so the in-place
update of server-only settings (HNSW, optimizers, quantization, payload indexes) is checked
against ``FakeServer``, a stand-in that keeps those settings as a Qdrant server does, passed
as the client to the module_utils.

The module itself runs in a child process (``run_module_process``) or through the ansible
CLI (``run_module``): this file imports neither ``ansible.module_utils.basic`` nor
``ansible.module_utils.testing``, directly or through the module_utils.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from ansible_collections.aistack.platform.plugins.module_utils import qdrant as qdrant_utils
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection import (
    actual as qc_actual,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection import (
    apply as qc_apply,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection import (
    compare as qc_compare,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection import (
    desired as qc_desired,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection import (
    manage as qc_manage,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection import (
    plan as qc_plan,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.common import (
    CollectionError,
    ConfigError,
)
from tests.conftest import REPO, run_module, run_module_process

RAG_LAYOUT = {
    "vectors": {"dense": {"size": 384, "distance": "Cosine"}},
    "sparse_vectors": {"bm25": {"modifier": "idf"}},
}


# --------------------------------------------------------------------------- helpers


def module_params(params: dict[str, Any]) -> dict[str, Any]:
    """Module parameters as AnsibleModule hands them over (unset options are None)."""
    defaults: dict[str, Any] = {
        "state": "present",
        "recreate": False,
        "path": None,
        "url": "http://qdrant.test:6333",
    }
    for key in (
        "vectors",
        "sparse_vectors",
        "hnsw_config",
        "optimizers_config",
        "quantization_config",
        "on_disk_payload",
        "payload_indexes",
        "aliases",
        "shard_number",
        "replication_factor",
        "write_consistency_factor",
    ):
        defaults[key] = None
    return {**defaults, **params}


def run(params: dict[str, Any], client: Any, check_mode: bool = False) -> dict[str, Any]:
    """One task through the module_utils against ``client`` (a FakeServer)."""
    return qc_manage.manage_collection(module_params(params), client, check_mode=check_mode)


class FakeServer:
    """Keeps collections the way a Qdrant server reports them (CollectionInfo models)."""

    def __init__(self) -> None:
        self.infos: dict[str, models.CollectionInfo] = {}
        self.aliases: dict[str, str] = {}
        self.calls: list[str] = []

    def collection_exists(self, name: str) -> bool:
        return name in self.infos

    def get_collection(self, name: str) -> models.CollectionInfo:
        return self.infos[name].model_copy(deep=True)

    def get_collection_aliases(self, name: str) -> Any:
        return models.CollectionsAliasesResponse(
            aliases=[
                models.AliasDescription(alias_name=a, collection_name=c)
                for a, c in self.aliases.items()
                if c == name
            ]
        )

    def get_aliases(self) -> Any:
        return models.CollectionsAliasesResponse(
            aliases=[
                models.AliasDescription(alias_name=a, collection_name=c)
                for a, c in self.aliases.items()
            ]
        )

    def create_collection(self, name: str, **kw: Any) -> bool:
        self.calls.append("create_collection")
        hnsw = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000}
        hnsw.update(
            (kw.get("hnsw_config") or models.HnswConfigDiff()).model_dump(exclude_none=True)
        )
        opt = {"default_segment_number": 0, "flush_interval_sec": 5, "indexing_threshold": 20000}
        opt.update(
            (kw.get("optimizers_config") or models.OptimizersConfigDiff()).model_dump(
                exclude_none=True
            )
        )
        self.infos[name] = models.CollectionInfo(
            status=models.CollectionStatus.GREEN,
            optimizer_status=models.OptimizersStatusOneOf.OK,
            segments_count=1,
            points_count=0,
            payload_schema={},
            config=models.CollectionConfig(
                params=models.CollectionParams(
                    vectors=kw.get("vectors_config"),
                    sparse_vectors=kw.get("sparse_vectors_config"),
                    on_disk_payload=kw.get("on_disk_payload", True),
                    # a server's defaults: one shard (one peer), one copy, one write
                    shard_number=kw.get("shard_number", 1),
                    replication_factor=kw.get("replication_factor", 1),
                    write_consistency_factor=kw.get("write_consistency_factor", 1),
                ),
                hnsw_config=models.HnswConfig(**hnsw),
                optimizer_config=models.OptimizersConfig(**opt),
                quantization_config=kw.get("quantization_config"),
            ),
        )
        return True

    def update_collection(self, name: str, **kw: Any) -> bool:
        self.calls.append("update_collection:" + ",".join(sorted(kw)))
        config = self.infos[name].config
        if kw.get("hnsw_config"):
            config.hnsw_config = config.hnsw_config.model_copy(
                update=kw["hnsw_config"].model_dump(exclude_none=True)
            )
        if kw.get("optimizers_config"):
            config.optimizer_config = config.optimizer_config.model_copy(
                update=kw["optimizers_config"].model_dump(exclude_none=True)
            )
        if "quantization_config" in kw:
            quant = kw["quantization_config"]
            config.quantization_config = None if quant == models.Disabled.DISABLED else quant
        if kw.get("collection_params"):
            for key, value in kw["collection_params"].model_dump(exclude_none=True).items():
                setattr(config.params, key, value)
        for vname, diff in (kw.get("vectors_config") or {}).items():
            vectors = config.params.vectors
            target = vectors if isinstance(vectors, models.VectorParams) else vectors[vname]
            target.on_disk = diff.on_disk
        for sname, params in (kw.get("sparse_vectors_config") or {}).items():
            config.params.sparse_vectors[sname] = params
        return True

    def create_payload_index(self, name: str, field: str, field_schema: Any, wait: bool) -> None:
        self.calls.append(f"create_payload_index:{field}")
        self.infos[name].payload_schema[field] = models.PayloadIndexInfo(
            data_type=field_schema, points=0
        )

    def delete_payload_index(self, name: str, field: str, wait: bool) -> None:
        self.calls.append(f"delete_payload_index:{field}")
        del self.infos[name].payload_schema[field]

    def update_collection_aliases(self, change_aliases_operations: list[Any]) -> bool:
        self.calls.append("update_collection_aliases")
        for op in change_aliases_operations:
            if isinstance(op, models.DeleteAliasOperation):
                del self.aliases[op.delete_alias.alias_name]
            else:
                self.aliases[op.create_alias.alias_name] = op.create_alias.collection_name
        return True

    def delete_collection(self, name: str) -> bool:
        self.calls.append("delete_collection")
        del self.infos[name]
        self.aliases = {a: c for a, c in self.aliases.items() if c != name}
        return True

    def count(self, name: str, exact: bool) -> Any:
        return models.CountResult(count=0)


@pytest.fixture()
def call() -> Any:
    """Runs the module in a child Python process as Ansible would; returns its JSON result."""

    def _call(args: dict[str, Any], check: bool = False, diff: bool = True) -> dict[str, Any]:
        return run_module_process("qdrant_collection", args, check=check, diff=diff)

    return _call


def open_info(path: Path, name: str) -> models.CollectionInfo | None:
    client = QdrantClient(path=str(path))
    try:
        return client.get_collection(name) if client.collection_exists(name) else None
    finally:
        client.close()


# --------------------------------------------------------------------------- unit: options


def test_desired_state_normalises_unnamed_and_named_vectors() -> None:
    unnamed = qc_desired.desired_state(
        {"vectors": {"size": "8", "distance": "dot", "on_disk": "yes"}}
    )
    assert unnamed["vectors"] == {"": {"size": 8, "distance": "Dot", "on_disk": True}}
    named = qc_desired.desired_state(
        {"vectors": {"a": {"size": 4}, "b": {"size": 2, "distance": "EUCLID"}}}
    )
    assert named["vectors"] == {
        "a": {"size": 4, "distance": "Cosine"},
        "b": {"size": 2, "distance": "Euclid"},
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"vectors": {"size": "big"}}, "vectors.size must be a positive integer"),
        ({"vectors": {"size": 0}}, "vectors.size must be a positive integer"),
        ({"vectors": {"dense": {"distance": "Cosine"}}}, "vectors.dense.size is required"),
        ({"vectors": {"size": 3, "distance": "hamming"}}, "vectors.distance must be one of"),
        ({"vectors": {"size": 3, "dims": 3}}, "unsupported key(s) dims"),
        ({"vectors": {"dense": 384}}, "vectors.dense must be a dict"),
        ({"sparse_vectors": {"bm25": {"modifier": "bm42"}}}, "modifier must be idf or none"),
        ({"payload_indexes": {"tenant": "string"}}, "payload_indexes.tenant must be one of"),
        (
            {"quantization_config": {"type": "product"}},
            "compression is required for type product",
        ),
        (
            {"quantization_config": {"type": "binary", "quantile": 0.9}},
            "quantile applies to type scalar only",
        ),
    ],
)
def test_invalid_options_are_rejected(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        qc_desired.desired_state(params)
    assert message in str(info.value)


def test_compare_reports_only_given_settings() -> None:
    actual = {
        "vectors": {"dense": {"size": 384, "distance": "Cosine", "on_disk": False}},
        "sparse_vectors": {"bm25": {"modifier": "idf", "on_disk": False}},
        "hnsw_config": {"m": 16, "ef_construct": 100},
        "optimizers_config": {},
        "quantization_config": None,
        "on_disk_payload": True,
        "payload_indexes": {"document_id": "keyword"},
        "aliases": [],
    }
    desired = qc_desired.desired_state(
        {"vectors": {"dense": {"size": 384}}, "hnsw_config": {"m": 16}}
    )
    assert qc_compare.compare(desired, actual) == ([], [])
    desired = qc_desired.desired_state(
        {
            "vectors": {"dense": {"size": 768, "distance": "Dot"}},
            "sparse_vectors": {"bm25": {}, "splade": {}},
            "hnsw_config": {"m": 32},
            "quantization_config": {"type": "disabled"},
        }
    )
    immutable, mutable = qc_compare.compare(desired, actual)
    assert immutable == [
        "vectors.dense.size (384 -> 768)",
        "vectors.dense.distance (Cosine -> Dot)",
        "sparse_vectors (names ['bm25'] -> ['bm25', 'splade'])",
    ]
    assert mutable == [("hnsw_config", "hnsw_config.m: 16 -> 32")]


def test_embedded_mode_drops_settings_it_does_not_keep() -> None:
    desired = qc_desired.desired_state(
        {
            "vectors": {"size": 4, "on_disk": True},
            "hnsw_config": {"m": 8},
            "payload_indexes": {"a": "keyword"},
        }
    )
    kept, ignored = qc_desired.drop_embedded_ignored(desired)
    assert ignored == ["hnsw_config", "payload_indexes", "vectors.on_disk"]
    assert kept == {"vectors": {"": {"size": 4, "distance": "Cosine"}}}


def test_connection_kwargs(tmp_path: Path) -> None:
    assert qdrant_utils.client_kwargs({"path": str(tmp_path)}) == {"path": str(tmp_path)}
    kwargs = qdrant_utils.client_kwargs(
        {"url": "https://q:6333", "api_key": "s3cret", "timeout": 5, "validate_certs": False}
    )
    assert kwargs == {
        "url": "https://q:6333",
        "timeout": 5,
        "api_key": "s3cret",
        "https": True,
        "verify": False,
    }
    with pytest.raises(ValueError, match="one of url"):
        qdrant_utils.client_kwargs({})


def test_module_utils_import_without_ansible_basic() -> None:
    """This file (hence module_utils) never imports ansible.module_utils.basic: it patches
    sys.intern in the importing process, after which torch cannot be imported."""
    code = (
        "import importlib.util, sys\n"
        "intern = sys.intern\n"
        "sys.path[:0] = ['collections', '.']\n"
        f"spec = importlib.util.spec_from_file_location('t', {str(Path(__file__))!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "bad = [m for m in ('ansible.module_utils.basic', 'ansible.module_utils.testing')"
        " if m in sys.modules]\n"
        "print(bad, sys.intern is intern)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout.strip() == "[] True", proc.stdout + proc.stderr


def test_alias_elements_must_be_names() -> None:
    for raw in (None, "a,b", ["a", 1, 2.5, True]):
        qc_desired.check_alias_elements(raw)
    with pytest.raises(ConfigError) as info:
        qc_desired.check_alias_elements(["ok", {"x": 2}])
    assert str(info.value) == ("aliases must be a list of alias names (strings), got dict {'x': 2}")
    with pytest.raises(ConfigError, match="got list \\['a'\\]"):
        qc_desired.check_alias_elements([["a"]])
    params = module_params({"name": "docs", **RAG_LAYOUT, "aliases": ["{'x': 2}"]})
    with pytest.raises(CollectionError) as failed:
        qc_manage.build_desired(params, raw_aliases=[{"x": 2}])
    assert failed.value.msg == (
        "Invalid options for collection docs: aliases must be a list of alias names "
        "(strings), got dict {'x': 2}"
    )
    # state=absent validates nothing (as for the other options).
    assert qc_manage.build_desired({**params, "state": "absent"}, [{"x": 2}]) == {}


def test_desired_state_keeps_only_given_settings() -> None:
    desired = qc_desired.desired_state(
        module_params(
            {
                "sparse_vectors": {"bm25": None},
                "hnsw_config": {"m": None, "ef_construct": None},
                "optimizers_config": {"indexing_threshold": 100, "max_segment_size": None},
                "payload_indexes": {},
                "aliases": ["b", "a", "b"],
            }
        )
    )
    assert desired == {
        "sparse_vectors": {"bm25": {}},
        "optimizers_config": {"indexing_threshold": 100},
        "payload_indexes": {},
        "aliases": ["a", "b"],
    }
    assert qc_desired.desired_quantization({"type": "disabled", "quantile": None}) == {
        "type": "disabled"
    }
    with pytest.raises(ConfigError, match="disabled takes no other keys"):
        qc_desired.desired_quantization({"type": "disabled", "always_ram": True})


def test_predict_fills_qdrant_defaults() -> None:
    desired = qc_desired.desired_state({**RAG_LAYOUT, "hnsw_config": {"m": 8}})
    created = qc_compare.predict(desired, None)
    assert created == {
        **qc_compare.empty_state(),
        "vectors": {"dense": {"size": 384, "distance": "Cosine", "on_disk": False}},
        "sparse_vectors": {"bm25": {"modifier": "idf", "on_disk": False}},
        "hnsw_config": {"m": 8},
    }
    updated = qc_compare.predict(
        {"quantization_config": {"type": "disabled"}, "aliases": ["x"]},
        {**created, "quantization_config": {"type": "binary"}},
    )
    assert updated["quantization_config"] is None
    assert updated["aliases"] == ["x"]
    assert updated["hnsw_config"] == {"m": 8}


def test_plan_actions() -> None:
    state = qc_compare.predict(qc_desired.desired_state(RAG_LAYOUT), None)
    missing = qc_actual.Snapshot(False)
    present = qc_actual.Snapshot(True, state, "green", 7)
    desired = qc_desired.desired_state(RAG_LAYOUT)

    assert qc_plan.plan_absent(missing) == qc_plan.Plan("keep")
    assert qc_plan.plan_absent(present) == qc_plan.Plan("delete", ["delete (7 points)"])
    assert qc_plan.plan_present("docs", desired, missing, False) == qc_plan.Plan(
        "create", ["create"]
    )
    assert not qc_plan.plan_present("docs", desired, present, False).changed

    update = qc_plan.plan_present(
        "docs", {"aliases": ["a"], "hnsw_config": {"m": 4}}, present, False
    )
    assert update == qc_plan.Plan(
        "update",
        ["hnsw_config.m: absent -> 4", "aliases: [] -> ['a']"],
        {"hnsw_config", "aliases"},
    )

    bigger = qc_desired.desired_state({"vectors": {"dense": {"size": 768}}})
    recreate = qc_plan.plan_present("docs", bigger, present, True)
    assert recreate == qc_plan.Plan("recreate", ["recreate: vectors.dense.size (384 -> 768)"])
    with pytest.raises(CollectionError) as immutable:
        qc_plan.plan_present("docs", bigger, present, False)
    assert immutable.value.details == {"immutable": ["vectors.dense.size (384 -> 768)"]}
    assert "(its 7 points are deleted)" in immutable.value.msg
    with pytest.raises(CollectionError, match="vectors \\(or sparse_vectors\\) is required"):
        qc_plan.plan_present("docs", {"aliases": []}, missing, False)


def test_error_message() -> None:
    params = {"name": "docs", "url": "http://q:6333"}
    assert qc_manage.error_message(params, RuntimeError("boom")) == (
        "Qdrant error on collection docs: boom"
    )
    assert qc_manage.error_message(params, httpx.ConnectError("refused")) == (
        "Qdrant at http://q:6333 is unreachable: refused"
    )

    class Forbidden(Exception):
        status_code = 403

    assert qc_manage.error_message(params, Forbidden()) == (
        "Qdrant at http://q:6333 refused the credentials (HTTP 403): check api_key"
    )


# --------------------------------------------------------------------------- unit: server semantics


def test_server_mutable_settings_are_updated_in_place() -> None:
    server = FakeServer()
    spec = {
        "name": "docs",
        **RAG_LAYOUT,
        "hnsw_config": {"m": 16},
        "payload_indexes": {"document_id": "keyword"},
    }
    created = run(spec, server)
    assert created["changed"] and created["changes"] == ["create"]
    assert created["collection"]["payload_indexes"] == {"document_id": "keyword"}
    assert run(spec, server)["changed"] is False

    server.calls.clear()
    spec.update(
        hnsw_config={"m": 32, "ef_construct": 200},
        optimizers_config={"indexing_threshold": 50000},
        quantization_config={"type": "scalar", "quantile": 0.99, "always_ram": True},
        on_disk_payload=False,
        payload_indexes={"document_id": "keyword", "chunk_index": "integer"},
        vectors={"dense": {"size": 384, "distance": "Cosine", "on_disk": True}},
        sparse_vectors={"bm25": {"modifier": "idf", "on_disk": True}},
    )
    updated = run(spec, server)
    assert updated["changed"] and not updated["recreated"]
    assert "delete_collection" not in server.calls and "create_collection" not in server.calls
    assert sorted(updated["changes"]) == sorted(
        [
            "vectors.dense.on_disk: False -> True",
            "sparse_vectors.bm25.on_disk: False -> True",
            "hnsw_config.m: 16 -> 32",
            "hnsw_config.ef_construct: 100 -> 200",
            "optimizers_config.indexing_threshold: 20000 -> 50000",
            "quantization_config.type: absent -> scalar",
            "on_disk_payload: True -> False",
            "payload_indexes.chunk_index: absent -> integer",
        ]
    )
    effective = updated["collection"]
    assert effective["hnsw_config"]["m"] == 32
    assert effective["quantization_config"] == {
        "type": "scalar",
        "quantile": 0.99,
        "always_ram": True,
    }
    assert effective["payload_indexes"] == {"document_id": "keyword", "chunk_index": "integer"}
    assert effective["vectors"]["dense"]["on_disk"] is True
    assert updated["diff"]["before"]["hnsw_config"]["m"] == 16
    assert run(spec, server)["changed"] is False

    # A payload index with another schema is rebuilt; quantization can be switched off.
    server.calls.clear()
    spec.update(
        payload_indexes={"chunk_index": "keyword"}, quantization_config={"type": "disabled"}
    )
    again = run(spec, server)
    assert server.calls.count("delete_payload_index:chunk_index") == 1
    assert again["collection"]["quantization_config"] is None
    assert again["collection"]["payload_indexes"]["chunk_index"] == "keyword"


def test_server_check_mode_changes_nothing() -> None:
    server = FakeServer()
    run({"name": "docs", **RAG_LAYOUT}, server)
    server.calls.clear()
    result = run({"name": "docs", "hnsw_config": {"m": 64}}, server, check_mode=True)
    assert result["changed"] and result["changes"] == ["hnsw_config.m: 16 -> 64"]
    assert result["collection"]["hnsw_config"]["m"] == 64
    assert server.calls == []
    assert server.infos["docs"].config.hnsw_config.m == 16


def test_alias_pointing_elsewhere_is_moved_atomically() -> None:
    server = FakeServer()
    run({"name": "v1", **RAG_LAYOUT, "aliases": ["current"]}, server)
    result = run({"name": "v2", **RAG_LAYOUT, "aliases": ["current"]}, server)
    assert result["collection"]["aliases"] == ["current"]
    assert server.aliases == {"current": "v2"}


def test_server_state_is_read_and_shown() -> None:
    server = FakeServer()
    run({"name": "plain", "vectors": {"size": 8, "distance": "Dot"}}, server)
    snapshot = qc_actual.read_snapshot(server, "plain")
    assert snapshot.exists and snapshot.points == 0
    assert snapshot.state["vectors"] == {"": {"size": 8, "distance": "Dot", "on_disk": False}}
    assert snapshot.state["optimizers_config"]["indexing_threshold"] == 20000
    view = qc_actual.public_view("plain", snapshot.state, snapshot.status)
    assert view["name"] == "plain" and view["status"] == "green"
    assert view["vectors"] == {"size": 8, "distance": "Dot", "on_disk": False}
    assert qc_actual.public_view("plain", {}) == {}
    assert qc_actual.read_snapshot(server, "nothing") == qc_actual.Snapshot(False)


def test_server_update_touches_only_changed_sections() -> None:
    actual = qc_compare.predict(qc_desired.desired_state(RAG_LAYOUT), None)
    desired = qc_desired.desired_state(
        {
            "vectors": {"dense": {"size": 384, "on_disk": False}},
            "sparse_vectors": {"bm25": {"on_disk": True}},
            "quantization_config": {"type": "disabled"},
        }
    )
    kwargs = qc_apply.update_kwargs(desired, actual, {"sparse_vectors", "quantization_config"})
    assert sorted(kwargs) == ["quantization_config", "sparse_vectors_config"]
    assert kwargs["quantization_config"] == models.Disabled.DISABLED
    bm25 = kwargs["sparse_vectors_config"]["bm25"]
    assert bm25.modifier == models.Modifier.IDF and bm25.index.on_disk is True
    assert qc_apply.update_kwargs(desired, actual, {"vectors"}) == {"vectors_config": {}}

    ops = qc_apply.alias_operations("v2", ["b", "c"], ["a", "b"], {"a": "v2", "c": "v1"})
    assert [type(op).__name__ for op in ops] == [
        "DeleteAliasOperation",
        "DeleteAliasOperation",
        "CreateAliasOperation",
    ]
    assert [op.delete_alias.alias_name for op in ops[:2]] == ["a", "c"]
    assert ops[2].create_alias == models.CreateAlias(collection_name="v2", alias_name="c")


def test_server_failures_carry_the_result_so_far() -> None:
    server = FakeServer()
    with pytest.raises(CollectionError) as invalid:
        run({"name": "docs", "vectors": {"size": 0}}, server)
    assert invalid.value.msg.startswith("Invalid options for collection docs: vectors.size")
    assert invalid.value.details == qc_manage.new_result()

    with pytest.raises(CollectionError) as missing:
        run({"name": "docs", "hnsw_config": {"m": 4}}, server)
    assert "vectors (or sparse_vectors) is required" in missing.value.msg
    assert missing.value.details["changed"] is False

    run({"name": "docs", **RAG_LAYOUT}, server)
    server.calls.clear()
    with pytest.raises(CollectionError) as immutable:
        run({"name": "docs", "vectors": {"dense": {"size": 8}}}, server)
    assert immutable.value.details == {
        **qc_manage.new_result(),
        "immutable": ["vectors.dense.size (384 -> 8)"],
    }
    assert server.calls == []


def test_server_recreate_and_delete() -> None:
    server = FakeServer()
    run({"name": "docs", **RAG_LAYOUT, "aliases": ["live"]}, server)
    server.calls.clear()
    spec = {"name": "docs", "vectors": {"dense": {"size": 8}}, "recreate": True}
    checked = run(spec, server, check_mode=True)
    assert checked["recreated"] and checked["collection"]["status"] is None
    assert server.calls == []
    recreated = run(spec, server)
    assert recreated["recreated"] is True
    assert recreated["changes"] == ["recreate: vectors.dense.size (384 -> 8)"]
    assert server.calls == ["delete_collection", "create_collection"]
    assert recreated["collection"]["vectors"] == {
        "dense": {"size": 8, "distance": "Cosine", "on_disk": False}
    }
    assert recreated["diff"]["before"]["aliases"] == ["live"]

    server.calls.clear()
    absent = {"name": "docs", "state": "absent", "vectors": {"size": "not validated"}}
    assert run(absent, server, check_mode=True)["changes"] == ["delete (0 points)"]
    assert server.calls == []
    gone = run(absent, server)
    assert gone["changed"] and gone["collection"] == {} and gone["diff"]["after"] == {}
    assert server.calls == ["delete_collection"]
    again = run(absent, server)
    assert again["changed"] is False and "diff" not in again


def test_server_sharding_is_set_at_creation_and_replication_updated_in_place() -> None:
    server = FakeServer()
    spec = {"name": "docs", **RAG_LAYOUT, "shard_number": 6, "replication_factor": 2}
    created = run(spec, server)
    params = server.infos["docs"].config.params
    assert (params.shard_number, params.replication_factor) == (6, 2)
    assert created["collection"]["write_consistency_factor"] == 1  # the server's default
    assert run(spec, server)["changed"] is False

    # Replication and write consistency: one collection_params update, points kept.
    server.calls.clear()
    spec.update(replication_factor=3, write_consistency_factor=2)
    checked = run(spec, server, check_mode=True)
    assert checked["collection"]["replication_factor"] == 3 and server.calls == []
    updated = run(spec, server)
    assert updated["changes"] == [
        "replication_factor: 2 -> 3",
        "write_consistency_factor: 1 -> 2",
    ]
    assert server.calls == ["update_collection:collection_params"]
    params = server.infos["docs"].config.params
    assert (params.shard_number, params.replication_factor, params.write_consistency_factor) == (
        6, 3, 2
    )  # fmt: skip
    assert updated["diff"]["before"]["replication_factor"] == 2
    assert run(spec, server)["changed"] is False

    # The shard number is fixed at creation: refused without recreate, recreated with it.
    server.calls.clear()
    with pytest.raises(CollectionError, match=r"shard_number \(6 -> 3\)"):
        run({**spec, "shard_number": 3}, server)
    assert server.calls == []
    recreated = run({**spec, "shard_number": 3, "recreate": True}, server)
    assert recreated["changes"] == ["recreate: shard_number (6 -> 3)"]
    assert server.infos["docs"].config.params.shard_number == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"replication_factor": 2, "write_consistency_factor": 3},
            "write_consistency_factor (3) cannot exceed replication_factor (2)",
        ),
        ({"shard_number": 0}, "shard_number must be a positive integer, got 0"),
    ],
)
def test_sharding_options_are_checked(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        qc_desired.desired_state({"vectors": {"size": 4}, **params})


# --------------------------------------------------------------------------- integration: embedded


def test_create_idempotent_and_diff(call: Any, tmp_path: Path) -> None:
    args = {"path": str(tmp_path), "name": "docs", **RAG_LAYOUT, "aliases": ["docs-current"]}
    first = call(args)
    assert first["changed"] is True
    assert first["changes"] == ["create"]
    assert first["diff"]["before"] == {}
    assert first["diff"]["after"]["vectors"] == {
        "dense": {"size": 384, "distance": "Cosine", "on_disk": False}
    }
    assert first["collection"]["sparse_vectors"] == {"bm25": {"modifier": "idf", "on_disk": False}}
    assert first["collection"]["aliases"] == ["docs-current"]
    assert first["points_count"] == 0

    second = call(args)
    assert second["changed"] is False
    assert "diff" not in second
    assert second["collection"] == first["collection"]


def test_check_mode_creates_nothing(call: Any, tmp_path: Path) -> None:
    result = call({"path": str(tmp_path), "name": "docs", **RAG_LAYOUT}, check=True)
    assert result["changed"] is True
    assert result["collection"]["vectors"]["dense"]["size"] == 384
    assert open_info(tmp_path, "docs") is None


def test_unnamed_vector(call: Any, tmp_path: Path) -> None:
    args = {"path": str(tmp_path), "name": "plain", "vectors": {"size": 8, "distance": "Dot"}}
    assert call(args)["collection"]["vectors"] == {"size": 8, "distance": "Dot", "on_disk": False}
    assert call(args)["changed"] is False


def test_in_place_update_keeps_points(call: Any, tmp_path: Path) -> None:
    call({"path": str(tmp_path), "name": "docs", **RAG_LAYOUT, "aliases": ["a"]})
    client = QdrantClient(path=str(tmp_path))
    client.upsert(
        "docs",
        [models.PointStruct(id=1, vector={"dense": [0.1] * 384}, payload={"k": "v"})],
    )
    client.close()

    args = {
        "path": str(tmp_path),
        "name": "docs",
        "sparse_vectors": {"bm25": {"modifier": "none"}},
        "aliases": ["b", "c"],
    }
    checked = call(args, check=True)
    assert checked["changed"] is True
    assert open_info(tmp_path, "docs").config.params.sparse_vectors["bm25"].modifier == "idf"

    result = call(args)
    assert result["changed"] is True and result["recreated"] is False
    assert result["changes"] == [
        "sparse_vectors.bm25.modifier: idf -> none",
        "aliases: ['a'] -> ['b', 'c']",
    ]
    assert result["points_count"] == 1
    assert result["collection"]["aliases"] == ["b", "c"]
    assert result["diff"]["before"]["aliases"] == ["a"]
    assert result["diff"]["after"]["sparse_vectors"]["bm25"]["modifier"] == "none"
    assert call(args)["changed"] is False


def test_immutable_mismatch_fails_then_recreate(call: Any, tmp_path: Path) -> None:
    call({"path": str(tmp_path), "name": "docs", **RAG_LAYOUT})
    args = {
        "path": str(tmp_path),
        "name": "docs",
        "vectors": {"dense": {"size": 768, "distance": "Cosine"}},
    }
    failed = call(args)
    assert failed["failed"] is True
    assert "immutable setting(s) differ: vectors.dense.size (384 -> 768)" in failed["msg"]
    assert "recreate: true" in failed["msg"]
    assert open_info(tmp_path, "docs").config.params.vectors["dense"].size == 384

    renamed = call({**args, "vectors": {"embedding": {"size": 384}}})
    assert "vectors (names ['dense'] -> ['embedding'])" in renamed["msg"]

    checked = call({**args, "recreate": True}, check=True)
    assert checked["changed"] and checked["recreated"]
    assert open_info(tmp_path, "docs").config.params.vectors["dense"].size == 384

    recreated = call({**args, "recreate": True})
    assert recreated["changed"] is True and recreated["recreated"] is True
    assert recreated["changes"] == ["recreate: vectors.dense.size (384 -> 768)"]
    assert recreated["collection"]["vectors"]["dense"]["size"] == 768
    assert call({**args, "recreate": True})["changed"] is False


def test_absent(call: Any, tmp_path: Path) -> None:
    assert call({"path": str(tmp_path), "name": "docs", "state": "absent"})["changed"] is False
    call({"path": str(tmp_path), "name": "docs", **RAG_LAYOUT})
    checked = call({"path": str(tmp_path), "name": "docs", "state": "absent"}, check=True)
    assert checked["changed"] is True and open_info(tmp_path, "docs") is not None
    gone = call({"path": str(tmp_path), "name": "docs", "state": "absent"})
    assert gone["changed"] is True
    assert gone["diff"]["after"] == {}
    assert open_info(tmp_path, "docs") is None


def test_embedded_warns_about_ignored_settings(call: Any, tmp_path: Path) -> None:
    args = {
        "path": str(tmp_path),
        "name": "docs",
        **RAG_LAYOUT,
        "hnsw_config": {"m": 48},
        "payload_indexes": {"document_id": "keyword"},
        "quantization_config": {"type": "scalar"},
        # one process: no shards to spread, no peers to replicate to
        "shard_number": 3,
        "write_consistency_factor": 2,
        "replication_factor": 2,
    }
    first = call(args)
    assert first["ignored"] == [
        "shard_number",
        "replication_factor",
        "write_consistency_factor",
        "hnsw_config",
        "quantization_config",
        "payload_indexes",
    ]
    assert (
        "does not keep shard_number, replication_factor, write_consistency_factor, hnsw_config"
        in json.dumps(first["warnings"])
    )
    assert call(args)["changed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "x", "vectors": {"size": 4}}, "one of the following is required: url, path"),
        (
            {"name": "x", "url": "http://a", "path": "/tmp/x"},
            "parameters are mutually exclusive: url|path",
        ),
        ({"name": "x", "path": "P", "recreate": "maybe"}, "recreate"),
        ({"name": "x", "path": "P", "hnsw_config": {"m": "many"}}, "m"),
        ({"name": "x", "path": "P"}, "vectors (or sparse_vectors) is required"),
        ({"name": "x", "path": "P", "vectors": {"size": -1}}, "vectors.size must be a positive"),
    ],
)
def test_bad_input_fails_clearly(
    call: Any, tmp_path: Path, args: dict[str, Any], message: str
) -> None:
    if args.get("path") == "P":
        args = {**args, "path": str(tmp_path)}
    result = call(args)
    assert result["failed"] is True
    assert message in result["msg"]


def test_unreachable_server_fails_clearly(call: Any) -> None:
    result = call({"url": "http://127.0.0.1:9", "timeout": 2, "name": "docs", **RAG_LAYOUT})
    assert result["failed"] is True
    assert "Qdrant at http://127.0.0.1:9 is unreachable" in result["msg"]


def test_aliases_must_be_names(call: Any, tmp_path: Path) -> None:
    args = {"path": str(tmp_path), "name": "docs", **RAG_LAYOUT}
    failed = call({**args, "aliases": [{"x": 2}]})
    assert failed["failed"] is True
    assert failed["msg"] == (
        "Invalid options for collection docs: aliases must be a list of alias names "
        "(strings), got dict {'x': 2}"
    )
    assert failed["changed"] is False
    assert open_info(tmp_path, "docs") is None
    # Scalars are names written without quotes, as for any list of strings in Ansible.
    assert call({**args, "aliases": [1]})["collection"]["aliases"] == ["1"]


def test_api_key_is_not_logged(call: Any) -> None:
    secret = "s3cret-qdrant-api-key"
    result = call(
        {"url": "http://127.0.0.1:9", "api_key": secret, "timeout": 2, "name": "docs", **RAG_LAYOUT}
    )
    assert result["failed"] is True
    assert secret not in json.dumps(result)
    assert result["invocation"]["module_args"]["api_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_through_ansible_cli(tmp_path: Path) -> None:
    args = {"path": str(tmp_path), "name": "docs", **RAG_LAYOUT}
    first = run_module("aistack.platform.qdrant_collection", args, diff=True)
    assert first["changed"] is True, first
    assert first["collection"]["vectors"]["dense"]["size"] == 384
    second = run_module("aistack.platform.qdrant_collection", args)
    assert second["changed"] is False, second
    bad = run_module(
        "aistack.platform.qdrant_collection",
        {**args, "vectors": {"dense": {"size": 768}}},
    )
    assert bad["failed"] is True
    assert "vectors.dense.size (384 -> 768)" in bad["msg"]
    # The raw O(aliases) value is read the same way when Ansible runs the module.
    alias = run_module("aistack.platform.qdrant_collection", {**args, "aliases": [{"x": 2}]})
    assert alias["failed"] is True
    assert "aliases must be a list of alias names (strings), got dict" in alias["msg"]
    assert open_info(tmp_path, "docs").config.params.vectors["dense"].size == 384


def test_collections_playbook(tmp_path: Path) -> None:
    from tests.conftest import run_playbook

    store = tmp_path / "qdrant"
    extra = json.dumps(
        {
            "aistack_qdrant_path": str(store),
            "aistack_qdrant_collections": [
                {"name": "docs", **RAG_LAYOUT, "aliases": ["docs-live"]},
                {"name": "images", "vectors": {"size": 16, "distance": "Dot"}},
            ],
        }
    )
    first = run_playbook("playbooks/collections.yml", "-e", extra)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=1" in first.stdout
    second = run_playbook("playbooks/collections.yml", "-e", extra)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "changed=0" in second.stdout and "docs: unchanged (0 points)" in second.stdout
    assert open_info(store, "images").config.params.vectors.size == 16


def test_a_reindexed_name_is_managed_through_its_alias(call: Any, tmp_path: Path) -> None:
    """After the RAG service's re-index, the collection's name is an alias of its new build
    (`<name>.r<hex>`): the task manages that build and never drops the name's own alias."""
    client = QdrantClient(path=str(tmp_path))
    client.create_collection(
        "docs.r1",
        vectors_config={"dense": models.VectorParams(size=384, distance=models.Distance.COSINE)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    client.upsert("docs.r1", [models.PointStruct(id=1, vector={"dense": [0.1] * 384})])
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="docs.r1", alias_name="docs")
            )
        ]
    )
    client.close()
    args = {"path": str(tmp_path), "name": "docs", **RAG_LAYOUT, "aliases": ["docs-current"]}

    updated = call(args)
    assert updated["changed"] is True and updated["recreated"] is False
    assert updated["changes"] == ["aliases: [] -> ['docs-current']"]
    assert updated["points_count"] == 1
    assert call(args)["changed"] is False
    client = QdrantClient(path=str(tmp_path))
    assert {a.alias_name: a.collection_name for a in client.get_aliases().aliases} == {
        "docs": "docs.r1",
        "docs-current": "docs.r1",
    }
    client.close()

    recreated = call(
        {**args, "recreate": True, "vectors": {"dense": {"size": 8, "distance": "Dot"}}}
    )
    assert recreated["recreated"] is True and recreated["points_count"] == 0
    client = QdrantClient(path=str(tmp_path))
    assert {c.name for c in client.get_collections().collections} == {"docs"}
    assert client.get_collection("docs").config.params.vectors["dense"].size == 8
    client.close()

    # absent removes what the name stands for, also when it is an alias again
    client = QdrantClient(path=str(tmp_path))
    client.delete_collection("docs")
    client.create_collection(
        "docs.r2", vectors_config={"dense": models.VectorParams(size=8, distance="Dot")}
    )
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="docs.r2", alias_name="docs")
            )
        ]
    )
    client.close()
    gone = call({"path": str(tmp_path), "name": "docs", "state": "absent"})
    assert gone["changed"] is True
    client = QdrantClient(path=str(tmp_path))
    assert client.get_collections().collections == [] and client.get_aliases().aliases == []
    client.close()
    assert call({"path": str(tmp_path), "name": "docs", "state": "absent"})["changed"] is False
