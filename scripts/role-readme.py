#!/usr/bin/env python3
"""Generate each role's README variable reference from its meta/argument_specs.yml.

The README may hold hand-written text; only the part between the markers below is
generated, so the reference can never drift from the argument spec (tests run --check).

    scripts/role-readme.py            # rewrite every roles/*/README.md
    scripts/role-readme.py --check    # exit 1 naming the READMEs that are out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

BEGIN = (
    "<!-- BEGIN generated from meta/argument_specs.yml: "
    "edit the spec, then run scripts/role-readme.py -->"
)
END = "<!-- END generated -->"
ROLES = Path(__file__).resolve().parent.parent / "roles"


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    text = " ".join(str(value or "").split())
    # Ansible doc markup C(x), V(x), O(x), I(x) -> Markdown code.
    text = re.sub(r"\b[CVOI]\(([^)]*)\)", r"`\1`", text)
    return text.replace("|", "\\|")


def _default(name: str, option: dict[str, Any], defaults: dict[str, Any]) -> str:
    value = defaults.get(name, option.get("default"))
    if value is None:
        return ""
    rendered = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    rendered = rendered.removesuffix("...").strip()
    if len(rendered) > 80:
        rendered = rendered[:77] + "..."
    return f"`{rendered}`".replace("|", "\\|")


def _rows(options: dict[str, Any], defaults: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for name, option in options.items():
        kind = option.get("type", "str")
        if option.get("elements"):
            kind += f" of {option['elements']}"
        choices = option.get("choices")
        description = _text(option.get("description"))
        if choices:
            description += " Choices: " + ", ".join(f"`{c}`" for c in choices) + "."
        required = "yes" if option.get("required") else ""
        shown_default = _default(name, option, defaults) if not prefix else ""
        rows.append(f"| `{prefix}{name}` | {kind} | {required} | {shown_default} | {description} |")
        if isinstance(option.get("options"), dict):
            rows.extend(_rows(option["options"], {}, prefix=f"{prefix}{name}."))
    return rows


def generated_section(role: Path) -> str:
    spec = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]
    defaults_file = role / "defaults/main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    parts = [BEGIN]
    shown: dict[str, Any] = {}
    for entry, body in spec.items():
        same_as = next((e for e, o in shown.items() if o == body.get("options")), None)
        shown[entry] = body.get("options")
        if same_as is not None:
            parts.append(f"\nEntry point `{entry}` takes the same variables as `{same_as}`.")
            continue
        heading = "Variables" if entry == "main" else f"Variables of entry point `{entry}`"
        parts.append(f"\n## {heading}\n")
        if body.get("description"):
            parts.append(_text(body["description"]) + "\n")
        parts.append("| variable | type | required | default | description |")
        parts.append("| --- | --- | --- | --- | --- |")
        parts.extend(_rows(body.get("options") or {}, defaults or {}))
    parts.append("\n" + END)
    return "\n".join(parts)


def render(role: Path) -> str:
    readme = role / "README.md"
    section = generated_section(role)
    if readme.exists():
        current = readme.read_text()
        if BEGIN in current and END in current:
            head, rest = current.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            return head + section + tail
        return current.rstrip() + "\n\n" + section + "\n"
    spec = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]
    summary = _text(spec.get("main", {}).get("short_description", ""))
    return f"# aistack.platform.{role.name}\n\n{summary}\n\n{section}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale READMEs, write none")
    parser.add_argument("roles", nargs="*", type=Path, help="role directories (default: all)")
    args = parser.parse_args()
    roles = args.roles or sorted(p.parent.parent for p in ROLES.glob("*/meta/argument_specs.yml"))
    stale = []
    for role in roles:
        wanted = render(role)
        readme = role / "README.md"
        if not readme.exists() or readme.read_text() != wanted:
            stale.append(str(readme))
            if not args.check:
                readme.write_text(wanted)
    if args.check and stale:
        print("out of date (run scripts/role-readme.py):\n  " + "\n  ".join(stale))
        return 1
    if not args.check:
        print(f"{len(roles)} role READMEs checked, {len(stale)} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
