# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: secret_refs
short_description: Strip secret values, keeping only what may be rendered
version_added: "0.1.0"
description:
  - Takes a list of secret specifications (C(name), C(namespace), C(keys), C(source), C(data))
    and returns them without C(data), so that names and key names can be written to rendered
    bundles while values never are.
  - C(keys) defaults to the key names of C(data).
positional: _input
options:
  _input:
    description: Secret specifications.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Secrets to document in the bundle
  ansible.builtin.debug:
    msg: "{{ deploy_secrets | aistack.platform.secret_refs }}"
"""

RETURN = r"""
_value:
  description: The specifications without values.
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

ALLOWED = ("name", "namespace", "keys", "source")


def secret_refs(specs: Any) -> list[dict[str, Any]]:
    if not isinstance(specs, list):
        raise AnsibleFilterError(f"secret_refs expects a list, got {type(specs).__name__}")
    refs = []
    for spec in specs:
        if not isinstance(spec, dict) or "name" not in spec:
            raise AnsibleFilterError(f"each secret needs at least a name, got {spec!r}")
        ref = {key: spec[key] for key in ALLOWED if key in spec}
        if "keys" not in ref and isinstance(spec.get("data"), dict):
            ref["keys"] = sorted(spec["data"])
        refs.append(ref)
    return refs


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"secret_refs": secret_refs}
