# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU node groups: validation, node labels, the resources a workload requests, capacity.

One home for the arithmetic and the rules of GPU sharing per node group (none, time-slicing,
MIG), used by the gpu_operator role (preflight, node labels), the kserve role (which resource
and which nodes a predictor asks for) and the capacity planner of the summary, through the
filters of plugins/filter/gpu_groups.py. Pure functions on plain data, so they are unit-tested
without Ansible.
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.aistack.platform.plugins.module_utils.values import as_int

SHARING = ("none", "time-slicing", "mig")
GROUP_LABEL = "aistack.io/gpu-node-group"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
# mig-parted's own config that turns MIG off (gpu-operator chart: migManager.config.default).
MIG_DISABLED = "all-disabled"
# Device-plugin config keys this collection adds next to the time-slicing profiles.
EXCLUSIVE_KEY = "aistack-exclusive"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PROFILE = re.compile(r"^([1-9])g\.([0-9]+)gb$")


def mig_key(strategy: str) -> str:
    """The device-plugin config key of MIG nodes (no sharing, the MIG strategy's flags)."""
    return f"aistack-mig-{strategy}"


def mig_config(profile: str) -> str:
    """The mig-parted config that partitions every GPU of a node into ``profile`` slices."""
    return f"all-{profile}"


def mig_memory_gb(profile: str) -> int:
    """Memory of one MIG slice: '3g.40gb' -> 40."""
    match = _PROFILE.match(profile)
    if not match:
        raise ValueError(f"not a MIG profile: {profile!r}")
    return int(match.group(2))


def node_group_errors(
    groups: list[dict[str, Any]],
    models: dict[str, dict[str, Any]],
    *,
    strategy: str,
    mig_manager_enabled: bool,
    time_slicing_enabled: bool,
    time_slicing_keys: list[str],
) -> list[str]:
    """Every contradiction in the node groups, each a sentence naming the group and the fix."""
    errors: list[str] = []
    seen_names: set[str] = set()
    node_owner: dict[str, str] = {}
    reserved = {EXCLUSIVE_KEY, mig_key("single"), mig_key("mixed")}
    for key in sorted(reserved & set(time_slicing_keys)):
        errors.append(f"gpu_operator_time_slicing_profiles: {key} is reserved for the node groups")
    if strategy not in ("single", "mixed"):
        errors.append(f"aistack_gpu_mig_strategy must be single or mixed, got {strategy!r}")
    for index, group in enumerate(groups):
        if not isinstance(group, dict):
            errors.append(f"aistack_gpu_node_groups[{index}] must be a mapping, got {group!r}")
            continue
        name = str(group.get("name", ""))
        where = f"node group {name or index}"
        if not _NAME.match(name):
            errors.append(f"{where}: name must be a DNS label (a-z, 0-9, -), got {name!r}")
        elif name in seen_names:
            errors.append(f"{where}: the name is used twice")
        seen_names.add(name)
        model = str(group.get("model", ""))
        spec = models.get(model)
        if spec is None:
            errors.append(
                f"{where}: unknown GPU model {model!r} (known: {', '.join(sorted(models))}; "
                "add it to aistack_gpu_models)"
            )
        count = as_int(group.get("gpus_per_node"))
        if count is None or count < 1:
            got = group.get("gpus_per_node")
            errors.append(f"{where}: gpus_per_node must be an integer >= 1, got {got!r}")
        nodes = group.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            errors.append(f"{where}: nodes must list the Kubernetes node names of the group")
            nodes = []
        for node in nodes:
            other = node_owner.setdefault(str(node), name)
            if other != name:
                errors.append(
                    f"{where}: node {node} is also in node group {other} "
                    "(one GPU model and one sharing setting per node)"
                )
        sharing = group.get("sharing", "none")
        mig_profile = group.get("mig_profile") or ""
        ts_profile = group.get("time_slicing_profile") or ""
        if sharing not in SHARING:
            errors.append(f"{where}: sharing must be one of {', '.join(SHARING)}, got {sharing!r}")
            continue
        if mig_profile and ts_profile:
            errors.append(
                f"{where}: MIG (mig_profile {mig_profile}) and time-slicing (time_slicing_profile "
                f"{ts_profile}) on the same GPUs; choose one sharing per node group"
            )
        if sharing == "mig":
            if spec is not None and not spec.get("mig"):
                errors.append(f"{where}: {model} does not support MIG; use time-slicing or none")
            elif spec is not None and mig_profile not in spec["mig"]:
                errors.append(
                    f"{where}: MIG profile {mig_profile!r} is unknown for {model} "
                    f"(known: {', '.join(spec['mig'])})"
                )
            if not mig_manager_enabled:
                errors.append(
                    f"{where}: MIG needs the MIG manager (gpu_operator_mig_manager_enabled: true)"
                )
        elif mig_profile:
            errors.append(f"{where}: mig_profile is set but sharing is {sharing}; set sharing: mig")
        if sharing == "time-slicing":
            if not time_slicing_enabled:
                errors.append(
                    f"{where}: time-slicing needs gpu_operator_time_slicing_enabled: true"
                )
            elif ts_profile not in time_slicing_keys:
                errors.append(
                    f"{where}: time_slicing_profile {ts_profile!r} is not a time-slicing profile "
                    f"(known: {', '.join(time_slicing_keys)}; "
                    "see gpu_operator_time_slicing_profiles)"
                )
        elif ts_profile and sharing != "mig":
            errors.append(f"{where}: time_slicing_profile is set but sharing is {sharing}")
    return errors


def node_labels(
    groups: list[dict[str, Any]],
    models: dict[str, dict[str, Any]],
    *,
    strategy: str,
    mig_manager_enabled: bool,
    time_slicing_enabled: bool,
) -> dict[str, dict[str, str]]:
    """The labels of every node of the groups: the group, its MIG config and device-plugin config.

    With time-slicing on, the device plugin applies its default profile to every node without
    a config label, so MIG and unshared groups get configs of their own that share nothing.
    """
    labels: dict[str, dict[str, str]] = {}
    for group in groups:
        sharing = group.get("sharing", "none")
        node_labels_ = {GROUP_LABEL: str(group["name"])}
        if sharing == "mig":
            node_labels_[MIG_CONFIG_LABEL] = mig_config(str(group["mig_profile"]))
            if time_slicing_enabled:
                node_labels_[PLUGIN_CONFIG_LABEL] = mig_key(strategy)
        else:
            if mig_manager_enabled and models.get(str(group.get("model")), {}).get("mig"):
                node_labels_[MIG_CONFIG_LABEL] = MIG_DISABLED
            if sharing == "time-slicing":
                node_labels_[PLUGIN_CONFIG_LABEL] = str(group["time_slicing_profile"])
            elif time_slicing_enabled:
                node_labels_[PLUGIN_CONFIG_LABEL] = EXCLUSIVE_KEY
        for node in group.get("nodes", []):
            labels[str(node)] = dict(node_labels_)
    return labels


def gpu_resource(mig_profile: str, strategy: str, default: str = "nvidia.com/gpu") -> str:
    """The extended resource a container requests: a MIG slice is nvidia.com/mig-<profile>
    under the mixed strategy and a plain nvidia.com/gpu under the single strategy."""
    if mig_profile and strategy == "mixed":
        return f"nvidia.com/mig-{mig_profile}"
    return default


def workload_node_selector(node_group: str, mig_profile: str, strategy: str) -> dict[str, str]:
    """Where a GPU workload must run: its node group, or (single strategy, no group) the nodes
    partitioned into its MIG profile, since their slices are advertised as nvidia.com/gpu."""
    if node_group:
        return {GROUP_LABEL: node_group}
    if mig_profile and strategy == "single":
        return {MIG_CONFIG_LABEL: mig_config(mig_profile)}
    return {}


def workload_errors(
    prefix: str,
    *,
    node_group: str,
    mig_profile: str,
    gpu_count: int,
    groups: list[dict[str, Any]],
    time_slicing_one_per_pod: bool,
) -> list[str]:
    """Why a workload asking for ``gpu_count`` GPUs (or MIG slices) of a group cannot schedule."""
    errors: list[str] = []
    by_name = {str(g.get("name")): g for g in groups if isinstance(g, dict)}
    group = by_name.get(node_group) if node_group else None
    if node_group and group is None:
        known = ", ".join(by_name) or "none defined in aistack_gpu_node_groups"
        return [f"{prefix}_node_group {node_group!r} is not a GPU node group (known: {known})"]
    if mig_profile:
        if gpu_count > 1:
            errors.append(
                f"{prefix}_mig_profile {mig_profile} with {prefix}_gpu_count {gpu_count}: a CUDA "
                "process sees one MIG device, so tensor parallelism across MIG slices is not "
                "possible; use whole GPUs for multi-GPU models"
            )
        providers = [
            n
            for n, g in by_name.items()
            if g.get("sharing") == "mig" and g.get("mig_profile") == mig_profile
        ]
        if group is not None and group.get("mig_profile") != mig_profile:
            errors.append(
                f"{prefix}_mig_profile {mig_profile}: node group {node_group} provides "
                f"{group.get('mig_profile') or 'no MIG slices'} ({group.get('sharing', 'none')})"
            )
        elif not providers:
            errors.append(
                f"{prefix}_mig_profile {mig_profile}: no node group is partitioned into it, "
                "the pods would never schedule"
            )
    elif group is not None:
        sharing = group.get("sharing", "none")
        if sharing == "mig":
            errors.append(
                f"{prefix}_node_group {node_group} is partitioned with MIG "
                f"{group.get('mig_profile')}: set {prefix}_mig_profile: {group.get('mig_profile')}"
            )
        elif gpu_count > (as_int(group.get("gpus_per_node")) or 0):
            errors.append(
                f"{prefix}_gpu_count {gpu_count} is more than the {group.get('gpus_per_node')} "
                f"GPUs per node of node group {node_group}: the pods would never schedule"
            )
        elif sharing == "time-slicing" and gpu_count > 1 and time_slicing_one_per_pod:
            errors.append(
                f"{prefix}_gpu_count {gpu_count} on time-sliced node group {node_group}: "
                "the device plugin refuses more than one shared GPU per container "
                "(gpu_operator_time_slicing_fail_requests_greater_than_one)"
            )
    return errors


def capacity(
    groups: list[dict[str, Any]],
    models: dict[str, dict[str, Any]],
    time_slicing_replicas: dict[str, int],
    workloads: list[dict[str, Any]],
) -> dict[str, Any]:
    """How many replicas of each workload fit on its node group, and what will not schedule.

    Devices per node: whole GPUs (none), GPUs x replicas (time-slicing: shared, the memory of
    one GPU is split between its replicas) or GPUs x slices of the profile (MIG). A workload
    {name, node_group, gpus, mig_profile, replicas, memory_gb} needs ``gpus`` devices per
    replica on one node and the memory of its model on each device set. Workloads are placed
    in the order given, each taking devices from the nodes of its group.
    """
    free: dict[str, list[int]] = {}
    rows: list[dict[str, Any]] = []
    device_memory: dict[str, float] = {}
    for group in groups:
        name = str(group["name"])
        spec = models.get(str(group.get("model")), {})
        gpus = int(group.get("gpus_per_node", 0))
        sharing = group.get("sharing", "none")
        if sharing == "mig":
            profile = str(group["mig_profile"])
            per_node = gpus * int(spec.get("mig", {}).get(profile, 0))
            device_memory[name] = float(mig_memory_gb(profile))
        elif sharing == "time-slicing":
            slices = int(time_slicing_replicas.get(str(group.get("time_slicing_profile")), 1))
            per_node = gpus * slices
            device_memory[name] = float(spec.get("memory_gb", 0)) / slices
        else:
            per_node = gpus
            device_memory[name] = float(spec.get("memory_gb", 0))
        free[name] = [per_node] * len(group.get("nodes", []))
        rows.append(
            {
                "group": name,
                "model": group.get("model"),
                "sharing": sharing,
                "nodes": len(free[name]),
                "devices_per_node": per_node,
                "device_memory_gb": round(device_memory[name], 1),
            }
        )
    placements: list[dict[str, Any]] = []
    for workload in workloads:
        name = str(workload["name"])
        group = str(workload.get("node_group") or "")
        need = max(1, int(workload.get("gpus", 1)))
        wanted = int(workload.get("replicas", 1))
        memory = float(workload.get("memory_gb", 0))
        placed = 0
        reason = ""
        if group not in free:
            reason = f"node group {group or '(none)'} is not defined"
        elif memory > device_memory[group] * need:
            reason = (
                f"needs {memory:g} GB, {need} device(s) of node group {group} hold "
                f"{device_memory[group] * need:g} GB"
            )
        else:
            nodes = free[group]
            for _replica in range(wanted):
                slot = next((i for i, left in enumerate(nodes) if left >= need), None)
                if slot is None:
                    break
                nodes[slot] -= need
                placed += 1
            if placed < wanted:
                reason = f"{wanted - placed} replica(s) do not fit: node group {group} is full"
        fits = placed
        if group in free and placed == wanted:
            fits += max_replicas(free[group], need)
        placements.append(
            {
                "workload": name,
                "node_group": group,
                "devices_per_replica": need,
                "replicas": wanted,
                "scheduled": placed,
                "max_replicas": fits,
                "unschedulable": reason,
            }
        )
    return {"groups": rows, "placements": placements, "free": {g: sum(v) for g, v in free.items()}}


def group_line(row: dict[str, Any]) -> str:
    """One node group of the plan, for the summary."""
    unit = "GPU" if row["sharing"] == "none" else ("slice" if row["sharing"] == "mig" else "share")
    return (
        f"{row['group']} ({row['model']}, {row['sharing']}): {row['nodes']} node(s) x "
        f"{row['devices_per_node']} {unit}(s) of {row['device_memory_gb']:g} GB"
    )


def placement_line(row: dict[str, Any]) -> str:
    """One workload of the plan: replicas placed, the most that fit, why others do not."""
    text = (
        f"{row['workload']} on {row['node_group'] or '(no group)'}: {row['scheduled']}/"
        f"{row['replicas']} replica(s) of {row['devices_per_replica']} device(s) fit"
    )
    if row["unschedulable"]:
        return f"{text}; WILL NOT SCHEDULE: {row['unschedulable']}"
    return f"{text} (room for {row['max_replicas']} in all)"


def max_replicas(free_per_node: list[int], need: int) -> int:
    """Replicas of ``need`` devices each that still fit on nodes with these free devices."""
    return sum(left // need for left in free_per_node) if need > 0 else 0


__all__ = [
    "capacity",
    "gpu_resource",
    "group_line",
    "mig_config",
    "mig_key",
    "mig_memory_gb",
    "node_group_errors",
    "node_labels",
    "placement_line",
    "workload_errors",
    "workload_node_selector",
]
