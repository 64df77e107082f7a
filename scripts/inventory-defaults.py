#!/usr/bin/env python3
"""List the inventory settings that merely repeat a role default (or a global default).

Inventories carry only real overrides: a value equal to the default hides the role's own truth
(a version bump in the role would be silently overridden by the inventory). Both sides are
evaluated the way Ansible would for each host of the inventory (templates resolved against the
role defaults and the inventory's variables), so ``"{{ aistack_namespace }}"`` and ``ai-stack``
compare equal. The inventory's topology file (hosts.yml) is not checked: its host variables name
the architecture of each cluster host.

    scripts/inventory-defaults.py inventories/single-node ...   # exit 1 and list what repeats
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OMITTED = object()  # a value that resolves to `omit` (only equal to itself)


def trusted(value: Any) -> Any:
    """Role defaults are trusted templates for Ansible (its own files), so they are here too."""
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trusted(v) for v in value]
    return value


def role_defaults() -> dict[str, Any]:
    """Every role default of the collection (names are prefixed, so one flat mapping)."""
    merged: dict[str, Any] = {}
    for path in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        merged.update(trusted(yaml.safe_load(path.read_text(encoding="utf-8")) or {}))
    return merged


def settings_files(inventory: Path, host: Any) -> list[Path]:
    """group_vars files of the host's groups and its host_vars files (links followed)."""
    names = [g.name for g in host.get_groups()] + [f"../host_vars/{host.name}"]
    files: list[Path] = []
    for name in names:
        base = inventory / "group_vars" / name
        for candidate in (base, base.with_suffix(".yml"), base.with_suffix(".yaml")):
            if candidate.is_dir():
                files += sorted(candidate.resolve().rglob("*.y*ml"))
            elif candidate.is_file():
                files.append(candidate)
    return files


def evaluate(templar: Any, value: Any) -> Any:
    from ansible.errors import AnsibleValueOmittedError

    try:
        return templar.template(value)
    except AnsibleValueOmittedError:
        return OMITTED


def repeated_defaults(inventory: Path) -> list[str]:
    # Imported here: Ansible patches interpreter globals on import (see tests/conftest.py).
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    init_plugin_loader([str(ROOT / "collections")])
    loader = DataLoader()
    defaults = role_defaults()
    manager = InventoryManager(loader=loader, sources=[str(inventory / "hosts.yml")])
    variables = VariableManager(loader=loader, inventory=manager)
    found: set[str] = set()
    for host in manager.get_hosts():
        host_vars = variables.get_vars(host=host)
        for path in settings_files(inventory, host):
            for name in yaml.safe_load(path.read_text(encoding="utf-8")) or {}:
                if name not in defaults:
                    continue
                context = {**defaults, **host_vars}
                value = evaluate(Templar(loader=loader, variables=context), host_vars[name])
                context[name] = defaults[name]
                default = evaluate(Templar(loader=loader, variables=context), defaults[name])
                if value == default:
                    where = (
                        path.relative_to(inventory.resolve())
                        if path.is_relative_to(inventory.resolve())
                        else path.relative_to(ROOT)
                    )
                    found.add(f"{inventory.name}: {name} in {where} equals its default")
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventories", nargs="+", type=Path)
    args = parser.parse_args(argv)
    problems = [p for inv in args.inventories for p in repeated_defaults(inv.resolve())]
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
