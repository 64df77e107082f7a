"""The benchmarks' reports: ``<name>.json`` and a self-contained ``<name>.html`` (inline SVG:
pass rates per constraint for TravelPlanner, net worth over time for Vending-Bench), written
atomically into the results directory."""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any

W, H = 720, 300
ML, MR, MT, MB = 64, 20, 30, 40
CSS = (
    "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}svg{border:1px solid #eee}"
)


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _num(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"


def bar_svg(rates: dict[str, float | None], title: str) -> str:
    """Horizontal bars, one per constraint, 0-100 %; a constraint nobody stated shows n/a."""
    row = 22
    height = MT + row * max(len(rates), 1) + 30
    left, width = 190, W - 190 - MR
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" '
        f'height="{height}" font-size="12"><text x="{W / 2}" y="18" text-anchor="middle" '
        f'font-weight="bold">{html.escape(title)}</text>'
    ]
    for pct in (0, 25, 50, 75, 100):
        x = left + width * pct / 100
        parts.append(
            f'<line x1="{x}" y1="{MT}" x2="{x}" y2="{height - 26}" stroke="#ddd"/>'
            f'<text x="{x}" y="{height - 10}" text-anchor="middle">{pct}%</text>'
        )
    for i, (name, rate) in enumerate(rates.items()):
        y = MT + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{html.escape(name)}</text>'
        )
        if rate is None:
            parts.append(f'<text x="{left + 4}" y="{y + 15}" fill="#888">n/a</text>')
            continue
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{width * rate:.1f}" height="{row - 6}" '
            f'fill="#1f77b4"><title>{html.escape(name)}: {rate * 100:.1f}%</title></rect>'
            f'<text x="{left + width * rate + 4:.1f}" y="{y + 15}">{rate * 100:.1f}%</text>'
        )
    return "".join(parts) + "</svg>"


def line_svg(xs: list[float], series: dict[str, list[float]], title: str, xlabel: str) -> str:
    """Lines over a shared x axis (net worth, cash... by day)."""
    values = [v for ys in series.values() for v in ys]
    if not xs or not values:
        return f"<p>{html.escape(title)}: no data</p>"
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(values)), max(values) * 1.05 or 1.0
    pw, ph = W - ML - MR, H - MT - MB

    def sx(v: float) -> float:
        return ML + (v - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return MT + ph - (v - y0) / (y1 - y0) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" '
        f'height="{H}" font-size="12"><text x="{W / 2}" y="18" text-anchor="middle" '
        f'font-weight="bold">{html.escape(title)}</text>'
        f'<line x1="{ML}" y1="{MT + ph}" x2="{ML + pw}" y2="{MT + ph}" stroke="#444"/>'
        f'<line x1="{ML}" y1="{MT}" x2="{ML}" y2="{MT + ph}" stroke="#444"/>'
        f'<text x="{ML + pw / 2}" y="{H - 6}" text-anchor="middle">{html.escape(xlabel)}</text>'
    ]
    for k in range(5):
        yv = y0 + (y1 - y0) * k / 4
        xv = x0 + (x1 - x0) * k / 4
        parts.append(
            f'<text x="{ML - 4}" y="{sy(yv) + 4:.1f}" text-anchor="end">{_num(yv)}</text>'
            f'<text x="{sx(xv):.1f}" y="{MT + ph + 16}" text-anchor="middle">{_num(xv)}</text>'
        )
    colors = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e")
    for i, (name, ys) in enumerate(series.items()):
        color = colors[i % len(colors)]
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=False))
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}">'
            f"<title>{html.escape(name)}</title></polyline>"
            f'<text x="{ML + 8}" y="{MT + 14 + 14 * i}" fill="{color}">{html.escape(name)}</text>'
        )
    return "".join(parts) + "</svg>"


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{cells}</table>"


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


TP_HEADLINE = (
    ("Delivery rate", "delivery_rate"),
    ("Commonsense micro pass rate", "commonsense_micro_pass_rate"),
    ("Commonsense macro pass rate", "commonsense_macro_pass_rate"),
    ("Hard constraint micro pass rate", "hard_micro_pass_rate"),
    ("Hard constraint macro pass rate", "hard_macro_pass_rate"),
    ("Final pass rate", "final_pass_rate"),
)


def travelplanner_html(doc: dict[str, Any]) -> str:
    m = doc["metrics"]
    rows = [(label, f"{m[key] * 100:.2f}%") for label, key in TP_HEADLINE]
    rows += [(k, v) for k, v in doc.get("config", {}).items()]
    rates = {name: c["rate"] for name, c in m["per_constraint"].items()}
    failures = []
    for r in doc.get("plans", []):
        verdict = "; ".join(r.get("failed", [])) or ("passed" if r.get("delivered") else "")
        failures.append(
            f"<tr><td>{r['idx']}</td><td>{html.escape(str(r.get('query', ''))[:120])}</td>"
            f"<td>{html.escape(verdict or 'not delivered')}</td></tr>"
        )
    body = (
        _table(rows)
        + "<h2>Pass rate per constraint</h2>"
        + bar_svg(rates, "Pass rate per constraint (passed / stated)")
        + "<h2>Plans</h2><table><tr><th>#</th><th>query</th><th>failed constraints</th></tr>"
        + "".join(failures)
        + "</table>"
    )
    return _page("TravelPlanner", body)


def vending_html(doc: dict[str, Any]) -> str:
    r = doc["result"]
    hist = r["history"]
    days = [float(h["day"]) for h in hist]
    rows = [
        ("Net worth", f"${r['net_worth']:.2f}"),
        ("Units sold", r["units_sold"]),
        ("Days simulated", r["days_simulated"]),
        ("Bankrupt", f"day {r['bankrupt_day']}" if r["bankrupt"] else "no"),
        ("Days until sales stop", r["days_until_sales_stop"]),
    ]
    rows += [(k, v) for k, v in doc.get("config", {}).items()]
    body = (
        _table(rows)
        + line_svg(
            days,
            {
                "net worth": [h["net_worth"] for h in hist],
                "bank balance": [h["balance"] for h in hist],
                "inventory value": [h["inventory_value"] for h in hist],
            },
            "Net worth over time ($)",
            "day",
        )
        + line_svg(days, {"units sold": [h["units_sold"] for h in hist]}, "Units sold", "day")
    )
    return _page("Vending-Bench", body)


def write_reports(results_dir: str | Path, name: str, doc: dict[str, Any]) -> dict[str, str]:
    out = Path(results_dir)
    json_path, html_path = out / f"{name}.json", out / f"{name}.html"
    atomic_write(json_path, json.dumps(doc, indent=1, default=str))
    page = travelplanner_html(doc) if name.startswith("travelplanner") else vending_html(doc)
    atomic_write(html_path, page)
    return {"report_json": str(json_path), "report_html": str(html_path)}
