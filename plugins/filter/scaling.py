# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: scaling_errors
short_description: Check a stateless workload's autoscaling and disruption budget settings
version_added: "0.6.0"
description:
  - Takes a role's C(<role>_autoscaling) mapping (C(enabled), C(min_replicas), C(max_replicas),
    C(cpu_target_percent)) and returns the list of errors (empty when valid).
  - C(min_replicas) must be >= 1 and <= C(max_replicas); the CPU target between 1 and 100.
  - A PodDisruptionBudget (C(pdb_min_available) not null) must keep fewer pods than the fewest
    replicas (C(min_replicas) with the autoscaler, else C(replicas)), or a drain could never
    evict one; hence no PodDisruptionBudget for a workload that may run one replica.
positional: _input, prefix, pdb_min_available, replicas
options:
  _input:
    description: The C(<role>_autoscaling) mapping.
    type: dict
    required: true
  prefix:
    description: The variables' prefix, used in the messages (e.g. C(rag_pipeline)).
    type: str
    required: true
  pdb_min_available:
    description: C(<role>_pdb_min_available) (null for none).
    type: raw
  replicas:
    description: The fixed replica count used without the autoscaler.
    type: int
    default: 1
"""

EXAMPLES = r"""
- name: Validate
  ansible.builtin.assert:
    that: errors | length == 0
  vars:
    errors: >-
      {{ rag_pipeline_autoscaling | aistack.platform.scaling_errors('rag_pipeline',
           rag_pipeline_pdb_min_available, rag_pipeline_replicas) }}
"""

RETURN = r"""
_value:
  description: The error messages, empty when the settings are valid.
  type: list
  elements: str
"""

from typing import Any

from ansible_collections.aistack.platform.plugins.module_utils.values import as_int

KEYS = ("enabled", "min_replicas", "max_replicas", "cpu_target_percent")


def scaling_errors(
    autoscaling: Any, prefix: str, pdb_min_available: Any = None, replicas: Any = 1
) -> list[str]:
    name = f"{prefix}_autoscaling"
    if not isinstance(autoscaling, dict):
        return [f"{name} must be a mapping with {', '.join(KEYS)}"]
    missing = [key for key in KEYS if key not in autoscaling]
    if missing:
        return [f"{name} lacks {', '.join(missing)}"]
    errors = []
    enabled = str(autoscaling["enabled"]).lower() in ("true", "yes", "on", "1")
    low, high = as_int(autoscaling["min_replicas"]), as_int(autoscaling["max_replicas"])
    target = as_int(autoscaling["cpu_target_percent"])
    fixed = as_int(replicas)
    if enabled:
        if low is None or high is None or not 1 <= low <= high:
            errors.append(
                f"{name}.min_replicas must be >= 1 and <= max_replicas, got "
                f"{autoscaling['min_replicas']!r} and {autoscaling['max_replicas']!r}"
            )
        if target is None or not 1 <= target <= 100:
            errors.append(
                f"{name}.cpu_target_percent must be between 1 and 100, got "
                f"{autoscaling['cpu_target_percent']!r}"
            )
    floor = low if enabled else fixed
    if pdb_min_available is not None:
        keep = as_int(pdb_min_available)
        if keep is None or keep < 1:
            errors.append(
                f"{prefix}_pdb_min_available must be null or >= 1, got {pdb_min_available!r}"
            )
        elif floor is not None and keep >= floor:
            errors.append(
                f"{prefix}_pdb_min_available {keep} must be below the fewest replicas ({floor}), "
                "or no node could ever be drained: leave it null for a single replica"
            )
    return errors


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"scaling_errors": scaling_errors}
