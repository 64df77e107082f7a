"""Metric names in PromQL (dashboards, alert rules) and the names each component exports.

A small lexer, enough for the expressions the collection ships: string literals, label matchers,
`by/without/on/ignoring/group_*` label lists and range selectors are removed, then every
identifier that is not a function call, keyword or number is a metric name."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

KPS_FILES = REPO / "roles/kube_prometheus_stack/files"
DASHBOARDS = KPS_FILES / "dashboards"
ALERT_RULES = KPS_FILES / "alert-rules.yml"
METRIC_LISTS = REPO / "tests/fixtures/metrics"

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = _LABEL_LISTS.sub("", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range / subquery selectors
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in _KEYWORDS:
            continue  # a function or aggregation
        if re.fullmatch(r"(?:Inf|NaN|e\d*)", match.group()):
            continue
        names.add(match.group())
    return names


def dashboard_exprs(name: str) -> list[str]:
    dashboard: dict[str, Any] = json.loads((DASHBOARDS / f"{name}.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def rule_exprs() -> list[tuple[str, str]]:
    """(alert name, expression) of every rule in alert-rules.yml."""
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    return [(r.get("alert") or r["record"], r["expr"]) for g in groups for r in g["rules"]]


def exposed(families: dict[str, str], client_suffixes: bool = True) -> set[str]:
    """Sample names of metric families {name: type}: prometheus_client adds _total to counters
    (and _created), _bucket/_sum/_count to histograms, _sum/_count to summaries. DCGM exports
    its fields under their own names (client_suffixes=False)."""
    names = set()
    for name, kind in families.items():
        if not client_suffixes:
            names.add(name)
            continue
        base = name.removesuffix("_total") if kind == "counter" else name
        names |= {
            "counter": {f"{base}_total", f"{base}_created"},
            "gauge": {name},
            "histogram": {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"},
            "summary": {name, f"{name}_sum", f"{name}_count", f"{name}_created"},
        }[kind]
    return names


def listed_families(path: Path) -> dict[str, str]:
    """A checked-in list (tests/fixtures/metrics/*.txt): `name type` per line, # comments."""
    lines = [line.split("#", 1)[0].split() for line in path.read_text().splitlines()]
    return {parts[0]: parts[1] for parts in lines if parts}


def agents_families() -> dict[str, str]:
    """The agents' metric families from services/agents/aistack_agents/metrics.py, read without
    importing it (prometheus_client Counter/Gauge/Histogram calls, name first)."""
    tree = ast.parse((REPO / "services/agents/aistack_agents/metrics.py").read_text())
    kinds = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}
    families = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in kinds
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            families[str(node.args[0].value)] = kinds[node.func.id]
    return families
