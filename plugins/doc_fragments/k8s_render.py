# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Options shared by everything that validates rendered Kubernetes objects.
    DOCUMENTATION = r"""
options:
  kubernetes_version:
    description:
      - Kubernetes version (C(MAJOR.MINOR) or C(MAJOR.MINOR.PATCH)) whose API schemas the
        objects are validated against.
      - Must be a version that C(kubernetes-validate) ships schemas for.
    type: str
    default: "1.31"
  validate:
    description:
      - Validate every object before anything is written. Built-in kinds are checked against
        the Kubernetes JSON schemas, custom resources against the fields their CRDs require.
    type: bool
    default: true
  strict:
    description:
      - Reject fields the schema does not know (catches typos such as C(resource) for
        C(resources)).
    type: bool
    default: true
requirements:
  - kubernetes-validate >= 1.30
  - PyYAML
"""
