# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a task does to a collection: keep, create, update in place, recreate or delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.actual import (
    Snapshot,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.common import (
    CollectionError,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.compare import (
    compare,
)

KEEP = "keep"
CREATE = "create"
UPDATE = "update"
RECREATE = "recreate"
DELETE = "delete"


@dataclass
class Plan:
    """``action`` with one line per change (RV(changes)) and, for updates, the sections."""

    action: str
    changes: list[str] = field(default_factory=list)
    sections: set[str] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def plan_absent(snapshot: Snapshot) -> Plan:
    """Delete the collection (with its points) when it exists."""
    if not snapshot.exists:
        return Plan(KEEP)
    return Plan(DELETE, [f"delete ({snapshot.points} points)"])


def plan_create(name: str, desired: dict[str, Any]) -> Plan:
    """Create a missing collection; it needs a vector layout."""
    if not desired.get("vectors") and not desired.get("sparse_vectors"):
        raise CollectionError(
            f"Collection {name} does not exist: vectors (or sparse_vectors) is "
            "required to create it"
        )
    return Plan(CREATE, ["create"])


def plan_present(name: str, desired: dict[str, Any], snapshot: Snapshot, recreate: bool) -> Plan:
    """Create, update in place, recreate (when allowed) or keep the collection.

    Raises CollectionError when the layout is missing for a new collection, or when an
    immutable setting differs and ``recreate`` is false (``details`` holds ``immutable``).
    """
    if not snapshot.exists:
        return plan_create(name, desired)
    immutable, mutable = compare(desired, snapshot.state)
    if immutable and not recreate:
        raise CollectionError(
            "Collection {}: immutable setting(s) differ: {}. Set recreate: true to "
            "drop and recreate the collection (its {} points are deleted).".format(
                name, "; ".join(immutable), snapshot.points
            ),
            immutable=immutable,
        )
    if immutable:
        return Plan(RECREATE, [f"recreate: {item}" for item in immutable])
    if not mutable:
        return Plan(KEEP)
    return Plan(UPDATE, [text for _section, text in mutable], {s for s, _text in mutable})
