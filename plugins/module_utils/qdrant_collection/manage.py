# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One qdrant_collection task: desired state, plan, apply (unless check mode), result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.aistack.platform.plugins.module_utils.qdrant import (
    connection_error_message,
    is_embedded,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.actual import (
    Snapshot,
    all_aliases,
    public_view,
    read_snapshot,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.apply import (
    create_collection,
    update_collection,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.common import (
    CollectionError,
    ConfigError,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.compare import (
    predict,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.desired import (
    check_alias_elements,
    desired_state,
    drop_embedded_ignored,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant_collection.plan import (
    CREATE,
    DELETE,
    RECREATE,
    Plan,
    plan_absent,
    plan_present,
)

Warn = Callable[[str], None]


def _no_warning(_message: str) -> None:
    return None


def new_result() -> dict[str, Any]:
    """The return values before anything is known (also returned with early failures)."""
    return {
        "changed": False,
        "collection": {},
        "points_count": 0,
        "changes": [],
        "recreated": False,
        "ignored": [],
    }


def error_message(params: dict[str, Any], exc: BaseException) -> str:
    """The failure message for an unexpected error talking to Qdrant."""
    return connection_error_message(params, exc) or "Qdrant error on collection {}: {}".format(
        params["name"], to_native(exc)
    )


def build_desired(params: dict[str, Any], raw_aliases: Any = None) -> dict[str, Any]:
    """The desired state for V(present) (empty for V(absent)); raises CollectionError."""
    if params["state"] != "present":
        return {}
    try:
        desired = desired_state(params)
        check_alias_elements(raw_aliases)
    except ConfigError as exc:
        raise CollectionError(
            "Invalid options for collection {}: {}".format(params["name"], exc)
        ) from None
    return desired


def skip_embedded_ignored(
    desired: dict[str, Any], result: dict[str, Any], warn: Warn
) -> dict[str, Any]:
    """Drop what embedded Qdrant does not keep, listing it in RV(ignored) with a warning."""
    desired, ignored = drop_embedded_ignored(desired)
    if ignored:
        result["ignored"] = ignored
        warn(
            "Embedded Qdrant (path) does not keep {}: not applied and not compared. "
            "They take effect against a Qdrant server (url).".format(", ".join(ignored))
        )
    return desired


def physical_collection(client: Any, name: str) -> str:
    """The collection that ``name`` stands for: itself, or the collection its alias points at.

    The RAG service re-indexes a collection into a new one and moves the name over as an alias
    (``POST /collections/{name}/reindex``), so a task names the collection the service serves.
    """
    return all_aliases(client).get(name, name)


def read_named(client: Any, name: str, physical: str) -> Snapshot:
    """The snapshot of ``physical``, without the alias ``name`` itself among its aliases."""
    snapshot = read_snapshot(client, physical)
    if physical != name and snapshot.exists:
        snapshot.state["aliases"] = [a for a in snapshot.state["aliases"] if a != name]
    return snapshot


def apply_plan(
    client: Any, name: str, plan: Plan, desired: dict[str, Any], before: Snapshot, physical: str
) -> Snapshot:
    """Carry out a plan that changes something; returns the collection as read afterwards.

    ``physical`` is the collection behind ``name`` (``name`` itself unless it is an alias):
    deleting removes that collection (its aliases go with it); recreating makes ``name`` a
    plain collection again.
    """
    if plan.action in (DELETE, RECREATE):
        client.delete_collection(physical)
    if plan.action == DELETE:
        return Snapshot(False)
    if plan.action in (CREATE, RECREATE):
        create_collection(client, name, desired)
        physical = name
    else:
        update_collection(client, physical, desired, before.state, plan.sections)
    return read_named(client, name, physical)


def predict_snapshot(plan: Plan, desired: dict[str, Any], before: Snapshot) -> Snapshot:
    """The collection as ``apply_plan`` would leave it (check mode)."""
    if plan.action == DELETE:
        return Snapshot(False)
    if plan.action in (CREATE, RECREATE):
        return Snapshot(True, predict(desired, None), None, 0)
    return Snapshot(True, predict(desired, before.state), before.status, before.points)


def finish(
    result: dict[str, Any], name: str, plan: Plan, before: Snapshot, after: Snapshot
) -> dict[str, Any]:
    """Fill in the result of a task that changed (or in check mode would change) something."""
    result.update(
        changed=True,
        changes=plan.changes,
        points_count=after.points,
        collection=public_view(name, after.state, after.status),
        diff={
            "before": public_view(name, before.state, before.status),
            "after": public_view(name, after.state, after.status),
        },
        recreated=plan.action == RECREATE,
    )
    return result


def plan_task(
    params: dict[str, Any], client: Any, result: dict[str, Any], warn: Warn, raw_aliases: Any
) -> tuple[dict[str, Any], Snapshot, Plan]:
    """Desired state, current snapshot and plan; fills RV(ignored) and RV(points_count).

    A CollectionError raised here carries the result so far in its ``details``.
    """
    try:
        desired = build_desired(params, raw_aliases)
        if desired and is_embedded(params):
            desired = skip_embedded_ignored(desired, result, warn)
        before = read_named(client, params["name"], physical_collection(client, params["name"]))
        result["points_count"] = before.points
        if params["state"] == "absent":
            return desired, before, plan_absent(before)
        return desired, before, plan_present(params["name"], desired, before, params["recreate"])
    except CollectionError as exc:
        exc.details = {**result, **exc.details}
        raise


def manage_collection(
    params: dict[str, Any],
    client: Any,
    *,
    check_mode: bool = False,
    warn: Warn | None = None,
    raw_aliases: Any = None,
) -> dict[str, Any]:
    """Run one task against ``client``; returns the module result.

    ``params`` are the module parameters, ``raw_aliases`` the O(aliases) value as given (before
    Ansible converted its elements to strings). Raises CollectionError when the task fails;
    its ``details`` are the return values known so far.
    """
    name = params["name"]
    result = new_result()
    desired, before, plan = plan_task(params, client, result, warn or _no_warning, raw_aliases)
    if not plan.changed:
        result["collection"] = public_view(name, before.state, before.status)
        return result
    if check_mode:
        after = predict_snapshot(plan, desired, before)
    else:
        after = apply_plan(client, name, plan, desired, before, physical_collection(client, name))
    return finish(result, name, plan, before, after)
