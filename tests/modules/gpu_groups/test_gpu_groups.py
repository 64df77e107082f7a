"""GPU node groups: the preflight rules, node labels, workload resources and the capacity
planner's arithmetic (plugins/module_utils/gpu_groups.py), on plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.aistack.platform.plugins.module_utils import gpu_groups as gg

REPO = Path(__file__).resolve().parents[3]
MODELS: dict[str, Any] = yaml.safe_load((REPO / "roles/globals/defaults/main.yml").read_text())[
    "aistack_gpu_models"
]
H100 = {
    "name": "h100",
    "model": "H100-80GB",
    "nodes": ["h1", "h2"],
    "gpus_per_node": 8,
    "sharing": "mig",
    "mig_profile": "3g.40gb",
}
L40S = {
    "name": "l40s",
    "model": "L40S-48GB",
    "nodes": ["l1", "l2"],
    "gpus_per_node": 4,
    "sharing": "time-slicing",
    "time_slicing_profile": "l40s",
}
WHOLE = {"name": "whole", "model": "H200-141GB", "nodes": ["w1"], "gpus_per_node": 8}


def errors(groups: list[dict[str, Any]], **kw: Any) -> list[str]:
    args = {
        "strategy": "mixed",
        "mig_manager_enabled": True,
        "time_slicing_enabled": True,
        "time_slicing_keys": ["any", "l40s"],
    } | kw
    return gg.node_group_errors(groups, MODELS, **args)


def test_valid_groups_have_no_errors() -> None:
    assert errors([H100, L40S, WHOLE]) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"time_slicing_profile": "l40s"}, "MIG (mig_profile 3g.40gb) and time-slicing"),
        ({"mig_profile": "1g.18gb"}, "MIG profile '1g.18gb' is unknown for H100-80GB"),
        ({"model": "L40S-48GB"}, "L40S-48GB does not support MIG"),
        ({"model": "B300"}, "unknown GPU model 'B300'"),
        ({"gpus_per_node": 0}, "gpus_per_node must be an integer >= 1"),
        ({"sharing": "mps"}, "sharing must be one of none, time-slicing, mig"),
        ({"nodes": []}, "nodes must list the Kubernetes node names"),
        ({"name": "H100"}, "name must be a DNS label"),
    ],
)
def test_contradictions_are_refused(change: dict[str, Any], expected: str) -> None:
    found = errors([H100 | change, L40S])
    assert len(found) == 1 and expected in found[0], found
    assert found[0].startswith("node group ")


def test_node_in_two_groups_and_switched_off_features() -> None:
    found = errors([H100, L40S | {"nodes": ["l1", "h2"]}])
    assert found == [
        "node group l40s: node h2 is also in node group h100 "
        "(one GPU model and one sharing setting per node)"
    ]
    found = errors([H100, L40S], mig_manager_enabled=False, time_slicing_enabled=False)
    assert [e.split(": ", 1)[0] for e in found] == ["node group h100", "node group l40s"]
    assert "gpu_operator_mig_manager_enabled" in found[0]
    assert "gpu_operator_time_slicing_enabled" in found[1]
    found = errors([L40S | {"time_slicing_profile": "t4"}])
    assert "time_slicing_profile 't4' is not a time-slicing profile (known: any, l40s" in found[0]
    assert errors([L40S], time_slicing_keys=["any", "l40s", "aistack-exclusive"]) == [
        "gpu_operator_time_slicing_profiles: aistack-exclusive is reserved for the node groups"
    ]


def test_node_labels_choose_each_groups_sharing() -> None:
    labels = gg.node_labels(
        [H100, L40S, WHOLE, {**WHOLE, "name": "t4", "model": "T4-16GB", "nodes": ["t1"]}],
        MODELS,
        strategy="mixed",
        mig_manager_enabled=True,
        time_slicing_enabled=True,
    )
    assert labels["h1"] == {
        "aistack.io/gpu-node-group": "h100",
        "nvidia.com/mig.config": "all-3g.40gb",
        "nvidia.com/device-plugin.config": "aistack-mig-mixed",
    }
    assert labels["l2"] == {
        "aistack.io/gpu-node-group": "l40s",
        "nvidia.com/device-plugin.config": "l40s",
    }
    # MIG-capable GPUs outside MIG groups are kept unpartitioned; none of them time-sliced.
    assert labels["w1"]["nvidia.com/mig.config"] == "all-disabled"
    assert labels["w1"]["nvidia.com/device-plugin.config"] == "aistack-exclusive"
    assert "nvidia.com/mig.config" not in labels["t1"]
    bare = gg.node_labels(
        [WHOLE], MODELS, strategy="single", mig_manager_enabled=False, time_slicing_enabled=False
    )
    assert bare == {"w1": {"aistack.io/gpu-node-group": "whole"}}


def test_workload_resource_and_placement() -> None:
    assert gg.gpu_resource("3g.40gb", "mixed") == "nvidia.com/mig-3g.40gb"
    assert gg.gpu_resource("3g.40gb", "single") == "nvidia.com/gpu"
    assert gg.gpu_resource("", "mixed", "nvidia.com/gpu.shared") == "nvidia.com/gpu.shared"
    assert gg.workload_node_selector("h100", "3g.40gb", "mixed") == {
        "aistack.io/gpu-node-group": "h100"
    }
    assert gg.workload_node_selector("", "3g.40gb", "single") == {
        "nvidia.com/mig.config": "all-3g.40gb"
    }
    assert gg.workload_node_selector("", "", "single") == {}


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"node_group": "a100"}, "kserve_node_group 'a100' is not a GPU node group (known: h100"),
        ({"mig_profile": "3g.40gb", "gpu_count": 2}, "tensor parallelism across MIG slices"),
        ({"mig_profile": "1g.10gb"}, "no node group is partitioned into it"),
        ({"node_group": "l40s", "mig_profile": "3g.40gb"}, "node group l40s provides no MIG"),
        ({"node_group": "h100"}, "set kserve_mig_profile: 3g.40gb"),
        ({"node_group": "whole", "gpu_count": 16}, "more than the 8 GPUs per node"),
        ({"node_group": "l40s", "gpu_count": 2}, "refuses more than one shared GPU"),
    ],
)
def test_workloads_that_would_not_schedule(kw: dict[str, Any], expected: str) -> None:
    args = {"node_group": "", "mig_profile": "", "gpu_count": 1, "time_slicing_one_per_pod": True}
    found = gg.workload_errors("kserve", groups=[H100, L40S, WHOLE], **(args | kw))
    assert len(found) == 1 and expected in found[0], found


def test_workloads_that_schedule() -> None:
    args = {"time_slicing_one_per_pod": True, "groups": [H100, L40S, WHOLE]}
    mig = {"mig_profile": "3g.40gb", "gpu_count": 1}
    assert gg.workload_errors("k", node_group="h100", **mig, **args) == []
    assert gg.workload_errors("k", node_group="whole", mig_profile="", gpu_count=8, **args) == []
    assert gg.workload_errors("k", node_group="", mig_profile="", gpu_count=4, **args) == []


# -- the capacity planner ---------------------------------------------------------------------


def test_capacity_on_mig_time_sliced_and_whole_gpus() -> None:
    plan = gg.capacity(
        [H100, L40S, WHOLE],
        MODELS,
        {"any": 4, "l40s": 2},
        [
            # 7B bf16 (~16 GB) on 3g.40gb slices: 2 nodes x 8 GPUs x 2 slices = 32 devices.
            {"name": "llm", "node_group": "h100", "gpus": 1, "replicas": 8, "memory_gb": 16},
            # 70B bf16 (~140 GB) on 2 whole H200 per replica: 8 GPUs -> 4 replicas, 5 wanted.
            {"name": "big", "node_group": "whole", "gpus": 2, "replicas": 5, "memory_gb": 140},
            # 30 GB does not fit half an L40S (24 GB).
            {"name": "mid", "node_group": "l40s", "gpus": 1, "replicas": 1, "memory_gb": 30},
            {"name": "lost", "node_group": "b200", "gpus": 1, "replicas": 1, "memory_gb": 1},
        ],
    )
    groups = {row["group"]: row for row in plan["groups"]}
    assert groups["h100"]["devices_per_node"] == 16 and groups["h100"]["device_memory_gb"] == 40
    assert groups["l40s"]["devices_per_node"] == 8 and groups["l40s"]["device_memory_gb"] == 24
    assert groups["whole"]["devices_per_node"] == 8 and groups["whole"]["device_memory_gb"] == 141
    rows = {row["workload"]: row for row in plan["placements"]}
    assert rows["llm"]["scheduled"] == 8 and rows["llm"]["max_replicas"] == 32
    assert rows["llm"]["unschedulable"] == ""
    assert rows["big"]["scheduled"] == 4
    assert rows["big"]["unschedulable"] == "1 replica(s) do not fit: node group whole is full"
    assert rows["mid"]["scheduled"] == 0 and rows["mid"]["unschedulable"].startswith("needs 30 GB")
    assert rows["lost"]["unschedulable"] == "node group b200 is not defined"
    assert plan["free"] == {"h100": 24, "l40s": 16, "whole": 0}
    assert [gg.group_line(row) for row in plan["groups"]] == [
        "h100 (H100-80GB, mig): 2 node(s) x 16 slice(s) of 40 GB",
        "l40s (L40S-48GB, time-slicing): 2 node(s) x 8 share(s) of 24 GB",
        "whole (H200-141GB, none): 1 node(s) x 8 GPU(s) of 141 GB",
    ]
    assert gg.placement_line(rows["llm"]) == (
        "llm on h100: 8/8 replica(s) of 1 device(s) fit (room for 32 in all)"
    )
    assert gg.placement_line(rows["big"]) == (
        "big on whole: 4/5 replica(s) of 2 device(s) fit; "
        "WILL NOT SCHEDULE: 1 replica(s) do not fit: node group whole is full"
    )


def test_capacity_replicas_need_their_devices_on_one_node() -> None:
    # 3 nodes with 3 GPUs each: 9 GPUs, but a 2-GPU replica fits once per node -> 3, not 4.
    group = {"name": "g", "model": "L4-24GB", "nodes": ["a", "b", "c"], "gpus_per_node": 3}
    plan = gg.capacity(
        [group], MODELS, {}, [{"name": "m", "node_group": "g", "gpus": 2, "replicas": 4}]
    )
    row = plan["placements"][0]
    assert (row["scheduled"], row["max_replicas"]) == (3, 3)
    assert "1 replica(s) do not fit" in row["unschedulable"]
    assert plan["free"] == {"g": 3}


def test_mig_profile_memory() -> None:
    assert gg.mig_memory_gb("1g.18gb") == 18
    with pytest.raises(ValueError, match="not a MIG profile"):
        gg.mig_memory_gb("half")
    for model in MODELS.values():
        for profile, count in model["mig"].items():
            # every profile of the catalogue parses, and a GPU never holds more than 7 slices
            assert gg.mig_memory_gb(profile) > 0 and 1 <= count <= 7
