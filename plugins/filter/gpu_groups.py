# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: gpu_node_group_errors
short_description: GPU node groups - contradictions, node labels, workload resources, capacity
version_added: "0.2.0"
description:
  - C(gpu_node_group_errors) lists every contradiction in C(aistack_gpu_node_groups) (MIG and
    time-slicing on the same group, a MIG profile unknown for the GPU model, a node in two groups).
  - C(gpu_node_labels) returns the labels of each node of the groups.
  - C(gpu_workload_errors), C(gpu_resource_name) and C(gpu_workload_node_selector) say why a GPU
    workload would not schedule, which extended resource it requests and where it must run.
  - C(gpu_capacity) places the replicas of workloads on the groups (the capacity planner);
    C(gpu_capacity_line) and C(gpu_placement_line) write one line of its plan.
  - The rules live in C(plugins/module_utils/gpu_groups.py).
positional: _input
options:
  _input:
    description:
      - The node groups (C(aistack_gpu_node_groups)); for C(gpu_resource_name), the MIG profile.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Refuse contradictory GPU sharing settings
  ansible.builtin.assert:
    that: _errors | length == 0
    fail_msg: "{{ _errors | join('; ') }}"
  vars:
    _errors: >-
      {{ aistack_gpu_node_groups | aistack.platform.gpu_node_group_errors(aistack_gpu_models,
         strategy='single', mig_manager_enabled=true, time_slicing_enabled=true,
         time_slicing_keys=['any']) }}
"""

RETURN = r"""
_value:
  description: Error sentences, node labels, a resource name, a node selector or a capacity plan.
  type: raw
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.aistack.platform.plugins.module_utils import gpu_groups


def _groups(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise AnsibleFilterError(f"GPU node groups must be a list, got {type(value).__name__}")
    return value


def gpu_node_group_errors(groups: Any, models: dict[str, Any], **kwargs: Any) -> list[str]:
    return gpu_groups.node_group_errors(_groups(groups), models, **kwargs)


def gpu_node_labels(groups: Any, models: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return gpu_groups.node_labels(_groups(groups), models, **kwargs)


def gpu_workload_errors(groups: Any, prefix: str, **kwargs: Any) -> list[str]:
    return gpu_groups.workload_errors(prefix, groups=_groups(groups), **kwargs)


def gpu_resource_name(mig_profile: str, strategy: str, default: str = "nvidia.com/gpu") -> str:
    return gpu_groups.gpu_resource(mig_profile or "", strategy, default)


def gpu_workload_node_selector(node_group: str, mig_profile: str, strategy: str) -> dict[str, str]:
    return gpu_groups.workload_node_selector(node_group or "", mig_profile or "", strategy)


def gpu_capacity(
    groups: Any, models: dict[str, Any], time_slicing: dict[str, int], workloads: list[Any]
) -> dict[str, Any]:
    return gpu_groups.capacity(_groups(groups), models, time_slicing, workloads)


def gpu_capacity_line(row: dict[str, Any]) -> str:
    return gpu_groups.group_line(row)


def gpu_placement_line(row: dict[str, Any]) -> str:
    return gpu_groups.placement_line(row)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "gpu_node_group_errors": gpu_node_group_errors,
            "gpu_node_labels": gpu_node_labels,
            "gpu_workload_errors": gpu_workload_errors,
            "gpu_resource_name": gpu_resource_name,
            "gpu_workload_node_selector": gpu_workload_node_selector,
            "gpu_capacity": gpu_capacity,
            "gpu_capacity_line": gpu_capacity_line,
            "gpu_placement_line": gpu_placement_line,
        }
