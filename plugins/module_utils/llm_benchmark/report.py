# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports: ``llm_benchmark.json`` and a self-contained ``llm_benchmark.html`` (inline SVG)."""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .config import BenchmarkConfig
from .metrics import Records

__all__ = ["cdf_svg", "histogram_svg", "line_svg", "render_html", "scatter_svg", "write_reports"]

W, H = 640, 260
ML, MR, MT, MB = 56, 16, 28, 36
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
MAX_POINTS = 2000


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_reports(
    cfg: BenchmarkConfig, result: dict[str, Any], phases: list[dict[str, Any]]
) -> dict[str, str]:
    if not cfg.report_dir:
        raise ValueError("report_dir is not set")
    out = Path(cfg.report_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "config": cfg.public(),
        **{k: v for k, v in result.items() if k not in ("changed",)},
        "requests": {
            b["name"]: b["_records"].per_request(b["_t0"]) for b in phases if "_records" in b
        },
    }
    json_path = out / "llm_benchmark.json"
    html_path = out / "llm_benchmark.html"
    _atomic_write(json_path, json.dumps(doc, indent=1, default=str))
    _atomic_write(html_path, render_html(cfg, result, phases))
    return {"report_json": str(json_path), "report_html": str(html_path)}


# -- SVG helpers ---------------------------------------------------------------------------
def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = int(lo / step) * step
    ticks = []
    t = start
    while t <= hi + 1e-9 * step:
        if t >= lo - 1e-9 * step:
            ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


class _Axes:
    def __init__(
        self, title: str, xlabel: str, ylabel: str, xr: tuple[float, float], yr: tuple[float, float]
    ) -> None:
        self.x0, self.x1 = xr if xr[1] > xr[0] else (xr[0], xr[0] + 1)
        self.y0, self.y1 = yr if yr[1] > yr[0] else (yr[0], yr[0] + 1)
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" '
            f'height="{H}" font-family="sans-serif" font-size="11">',
            f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">'
            f"{html.escape(title)}</text>",
            f'<text x="{W / 2}" y="{H - 4}" text-anchor="middle">{html.escape(xlabel)}</text>',
            f'<text x="12" y="{H / 2}" text-anchor="middle" transform="rotate(-90 12 {H / 2})">'
            f"{html.escape(ylabel)}</text>",
            f'<rect x="{ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}" fill="none" '
            'stroke="#999"/>',
        ]
        for t in _ticks(self.x0, self.x1):
            x = self.sx(t)
            self.parts.append(
                f'<line x1="{x:.1f}" y1="{H - MB}" x2="{x:.1f}" y2="{H - MB + 4}" stroke="#999"/>'
                f'<text x="{x:.1f}" y="{H - MB + 15}" text-anchor="middle">{_fmt(t)}</text>'
            )
        for t in _ticks(self.y0, self.y1):
            y = self.sy(t)
            self.parts.append(
                f'<line x1="{ML}" y1="{y:.1f}" x2="{W - MR}" y2="{y:.1f}" stroke="#eee"/>'
                f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>'
            )

    def sx(self, v: float) -> float:
        return ML + (v - self.x0) / (self.x1 - self.x0) * (W - ML - MR)

    def sy(self, v: float) -> float:
        return H - MB - (v - self.y0) / (self.y1 - self.y0) * (H - MT - MB)

    def legend(self, names: list[str]) -> None:
        for i, name in enumerate(names):
            y = MT + 12 + 14 * i
            self.parts.append(
                f'<rect x="{W - MR - 150}" y="{y - 8}" width="10" height="10" '
                f'fill="{COLORS[i % len(COLORS)]}"/><text x="{W - MR - 136}" y="{y + 1}">'
                f"{html.escape(name)}</text>"
            )

    def svg(self) -> str:
        return "".join(self.parts) + "</svg>"


def _empty(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} 60" width="{W}" height="60" '
        f'font-family="sans-serif" font-size="12"><text x="10" y="30">{html.escape(title)}: '
        "no data</text></svg>"
    )


def histogram_svg(values: list[float], title: str, xlabel: str, bins: int = 40) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return _empty(title)
    lo, hi = min(vals), max(vals)
    if hi == lo:
        hi = lo + 1e-6
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in vals:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    ax = _Axes(title, xlabel, "requests", (lo, hi), (0, max(counts) * 1.05))
    for i, c in enumerate(counts):
        if c:
            x = ax.sx(lo + i * width)
            x2 = ax.sx(lo + (i + 1) * width)
            y = ax.sy(c)
            ax.parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(x2 - x - 1, 1):.1f}" '
                f'height="{ax.sy(0) - y:.1f}" fill="{COLORS[0]}"/>'
            )
    return ax.svg()


def cdf_svg(series: dict[str, list[float]], title: str, xlabel: str) -> str:
    data = {k: sorted(v for v in vals if v is not None) for k, vals in series.items()}
    data = {k: v for k, v in data.items() if v}
    if not data:
        return _empty(title)
    lo = min(v[0] for v in data.values())
    hi = max(v[-1] for v in data.values())
    ax = _Axes(title, xlabel, "share of requests", (lo, hi), (0, 1))
    for i, vals in enumerate(data.values()):
        n = len(vals)
        step = max(n // MAX_POINTS, 1)
        pts = [(vals[j], (j + 1) / n) for j in range(0, n, step)] + [(vals[-1], 1.0)]
        path = " ".join(f"{ax.sx(x):.1f},{ax.sy(y):.1f}" for x, y in pts)
        ax.parts.append(
            f'<polyline points="{path}" fill="none" stroke="{COLORS[i % len(COLORS)]}" '
            'stroke-width="1.5"/>'
        )
    ax.legend(list(data))
    return ax.svg()


def scatter_svg(
    x: list[float], series: dict[str, list[float | None]], title: str, xlabel: str, ylabel: str
) -> str:
    pairs = {
        k: [(a, b) for a, b in zip(x, ys, strict=False) if b is not None]
        for k, ys in series.items()
    }
    pairs = {k: v for k, v in pairs.items() if v}
    if not pairs:
        return _empty(title)
    xs = [p[0] for v in pairs.values() for p in v]
    ys = [p[1] for v in pairs.values() for p in v]
    ax = _Axes(title, xlabel, ylabel, (min(xs), max(xs)), (0, max(ys) * 1.05))
    for i, pts in enumerate(pairs.values()):
        step = max(len(pts) // MAX_POINTS, 1)
        color = COLORS[i % len(COLORS)]
        ax.parts.append(
            "".join(
                f'<circle cx="{ax.sx(a):.1f}" cy="{ax.sy(b):.1f}" r="1.6" fill="{color}" '
                'fill-opacity="0.6"/>'
                for a, b in pts[::step]
            )
        )
    ax.legend(list(pairs))
    return ax.svg()


def line_svg(
    x: list[float], series: dict[str, list[float | None]], title: str, xlabel: str, ylabel: str
) -> str:
    pairs = {
        k: [(a, b) for a, b in zip(x, ys, strict=False) if b is not None]
        for k, ys in series.items()
    }
    pairs = {k: sorted(v) for k, v in pairs.items() if v}
    if not pairs:
        return _empty(title)
    xs = [p[0] for v in pairs.values() for p in v]
    ys = [p[1] for v in pairs.values() for p in v]
    ax = _Axes(title, xlabel, ylabel, (0, max(xs) * 1.05), (0, max(ys) * 1.1))
    for i, pts in enumerate(pairs.values()):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{ax.sx(a):.1f},{ax.sy(b):.1f}" for a, b in pts)
        ax.parts.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>'
            + "".join(
                f'<circle cx="{ax.sx(a):.1f}" cy="{ax.sy(b):.1f}" r="3" fill="{color}"/>'
                for a, b in pts
            )
        )
    ax.legend(list(pairs))
    return ax.svg()


# -- HTML ----------------------------------------------------------------------------------
_CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.pass{color:#2a7a2a;font-weight:bold}.fail{color:#b00;font-weight:bold}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots svg{border:1px solid #eee}
"""


def _v(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return html.escape(str(v))


def render_html(cfg: BenchmarkConfig, result: dict[str, Any], phases: list[dict[str, Any]]) -> str:
    esc = html.escape
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>llm_benchmark {esc(str(result.get('model')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>LLM benchmark: {esc(str(result.get('model')))}</h1>",
        f"<p>{esc(result['plan']['url'])} · profile <b>{esc(cfg.profile)}</b> · "
        + (f"rampup {cfg.rampup:g} s · " if cfg.rampup else "")
        + f"stream {cfg.stream} · started {esc(str(result.get('started')))} · "
        f"{result.get('duration_s')} s</p>",
    ]
    slo = result.get("slo")
    if slo:
        cls = "pass" if slo["passed"] else "fail"
        out.append(
            f"<p>SLO: <span class='{cls}'>{'PASSED' if slo['passed'] else 'MISSED'}</span></p>"
        )
        if slo["violations"]:
            out.append("<ul>" + "".join(f"<li>{esc(v)}</li>" for v in slo["violations"]) + "</ul>")
    out.append(
        "<h2>Summary</h2><table><tr><th>phase</th><th>rate</th><th>conc.</th>"
        "<th>ok</th><th>err</th><th>inc.</th><th>req/s</th><th>out tok/s</th>"
        "<th>TTFT p50</th><th>TTFT p95</th><th>ITL p50</th><th>ITL p95</th>"
        "<th>TPOT mean</th><th>latency p50</th><th>latency p95</th><th>latency p99</th>"
        "<th>SLO</th></tr>"
    )
    for b in phases:
        m = b["metrics"]
        s = b.get("slo")
        sl = (
            ""
            if not s
            else (
                "<span class='pass'>ok</span>" if s["passed"] else "<span class='fail'>miss</span>"
            )
        )
        out.append(
            "<tr>"
            + "".join(
                f"<td>{x}</td>"
                for x in (
                    esc(b["name"]),
                    _v(b.get("rate")),
                    _v(m["concurrency"]),
                    m["successful"],
                    m["errored"],
                    m["incomplete"],
                    _v(m["requests_per_second"]),
                    _v(m["output_tokens_per_second"]),
                    _v(m["ttft_ms"]["p50"]),
                    _v(m["ttft_ms"]["p95"]),
                    _v(m["itl_ms"]["p50"]),
                    _v(m["itl_ms"]["p95"]),
                    _v(m["tpot_ms"]["mean"]),
                    _v(m["latency_ms"]["p50"]),
                    _v(m["latency_ms"]["p95"]),
                    _v(m["latency_ms"]["p99"]),
                    sl,
                )
            )
            + "</tr>"
        )
    out.append(
        "</table><p>Times in ms. Percentiles are nearest-rank over successful requests "
        "only; errored and incomplete requests are counted apart.</p>"
    )
    if len(phases) > 1:
        xs = [b["metrics"]["requests_per_second"] for b in phases]
        out.append("<h2>Sweep</h2><div class='plots'>")
        out.append(
            line_svg(
                xs,
                {
                    "TTFT p50": [b["metrics"]["ttft_ms"]["p50"] for b in phases],
                    "TTFT p95": [b["metrics"]["ttft_ms"]["p95"] for b in phases],
                    "latency p50": [b["metrics"]["latency_ms"]["p50"] for b in phases],
                    "latency p95": [b["metrics"]["latency_ms"]["p95"] for b in phases],
                },
                "Latency vs achieved throughput",
                "achieved requests/s",
                "ms",
            )
        )
        targets = [b.get("rate") for b in phases]
        if any(t is not None for t in targets):
            pts = [
                (t, b["metrics"]["requests_per_second"])
                for t, b in zip(targets, phases, strict=False)
                if t is not None
            ]
            out.append(
                line_svg(
                    [p[0] for p in pts],
                    {"achieved": [p[1] for p in pts], "target": [p[0] for p in pts]},
                    "Throughput vs target rate",
                    "target requests/s",
                    "requests/s",
                )
            )
        out.append(
            line_svg(
                xs,
                {
                    "ITL p50": [b["metrics"]["itl_ms"]["p50"] for b in phases],
                    "ITL p95": [b["metrics"]["itl_ms"]["p95"] for b in phases],
                },
                "Inter-token latency vs throughput",
                "achieved requests/s",
                "ms",
            )
        )
        out.append("</div>")
    for b in phases:
        rec: Records | None = b.get("_records")
        if rec is None:
            continue
        pr = rec.per_request(b["_t0"])
        if b["metrics"]["errors"]:
            out.append(
                f"<h3>{esc(b['name'])}: errors</h3><table><tr><th>error</th>"
                "<th>count</th></tr>"
                + "".join(
                    f"<tr><td>{esc(k)}</td><td>{n}</td></tr>"
                    for k, n in b["metrics"]["errors"].items()
                )
                + "</table>"
            )
        out.append(f"<h2>{esc(b['name'])}</h2><div class='plots'>")
        out.append(histogram_svg(pr["latency_ms"], "Request latency distribution", "ms"))
        out.append(histogram_svg(pr["ttft_ms"], "TTFT distribution", "ms"))
        out.append(
            cdf_svg({"TTFT": pr["ttft_ms"], "latency": pr["latency_ms"]}, "Latency CDF", "ms")
        )
        out.append(
            scatter_svg(
                pr["start_s"],
                {"TTFT": pr["ttft_ms"]},
                "TTFT per request",
                "request start (s)",
                "ms",
            )
        )
        out.append(
            scatter_svg(
                pr["start_s"], {"ITL": pr["itl_ms"]}, "ITL per request", "request start (s)", "ms"
            )
        )
        out.append("</div>")
    out.append(
        "<h2>Configuration</h2><pre>"
        + esc(json.dumps(cfg.public(), indent=1, default=str))
        + "</pre>"
    )
    out.append("</body></html>")
    return "\n".join(out)
