"""Report writing: JSON document and a self-contained HTML page with well-formed inline SVG."""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.config import (
    BenchmarkConfig,
    evaluate_slo,
)
from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.metrics import (
    Records,
    phase_metrics,
)
from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.report import (
    cdf_svg,
    histogram_svg,
    line_svg,
    write_reports,
)


def _phase(name: str, rate: float | None, n: int, seed: int) -> dict:
    rng = random.Random(seed)
    rec = Records()
    t = 0.0
    for _ in range(n):
        t += rng.expovariate(10)
        ttft = rng.uniform(0.08, 0.2)
        rec.add(t, t, (True, 200, t + ttft, t + ttft + 0.3, t + ttft + 0.31, 31, 31, 50, ""), 50)
    rec.add(t, t, (False, 500, 0.0, 0.0, t + 0.01, 0, -1, -1, "HTTP 500: <boom> & co"), 50)
    m = phase_metrics(rec, 0.0, t + 0.5, stream=True)
    return {
        "name": name,
        "mode": "constant" if rate else "concurrent",
        "rate": rate,
        "concurrency": None,
        "metrics": m,
        "slo": evaluate_slo({"ttft_p95_ms": 150}, m),
        "_records": rec,
        "_t0": 0.0,
    }


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", html, flags=re.S)]


def test_write_reports(tmp_path):
    cfg = BenchmarkConfig.from_dict(
        {"base_url": "http://h:1", "profile": "sweep", "max_requests": 50, "api_key": "sekrit",
         "report_dir": str(tmp_path / "r"), "slo": {"ttft_p95_ms": 150}, "rampup": 1.5}
    )  # fmt: skip
    phases = [_phase("synchronous", None, 50, 1), _phase("constant@5", 5.0, 50, 2)]
    result = {
        "model": "m<1>",
        "plan": {"url": "http://h:1/v1/chat/completions"},
        "started": "2026-01-01T00:00:00Z",
        "duration_s": 3.0,
        "metrics": phases[1]["metrics"],
        "slo": {"passed": False, "violations": ["ttft_p95_ms: 190 > 150"]},
        "benchmarks": [{k: v for k, v in p.items() if not k.startswith("_")} for p in phases],
    }
    paths = write_reports(cfg, result, phases)
    doc = json.loads(Path(paths["report_json"]).read_text())
    assert doc["config"]["api_key"] == "********"
    assert len(doc["requests"]["constant@5"]["latency_ms"]) == 50  # errors left out
    html = Path(paths["report_html"]).read_text()
    assert "sekrit" not in html and "m&lt;1&gt;" in html and "&lt;boom&gt; &amp; co" in html
    assert "MISSED" in html and "Throughput vs target rate" in html
    assert "rampup 1.5 s" in html and doc["config"]["rampup"] == 1.5
    svgs = _svgs(html)  # every plot parses as XML
    assert len(svgs) == 3 + 2 * 5
    assert not list(tmp_path.glob("r/.*"))  # no temp files left behind


def test_plots_handle_edge_cases():
    for svg in (
        histogram_svg([], "t", "ms"),
        histogram_svg([5.0, 5.0, 5.0], "t", "ms"),
        cdf_svg({"a": [None, 1.0]}, "t", "ms"),
        line_svg([1.0], {"a": [None]}, "t", "x", "y"),
        line_svg([1.0, 2.0], {"a": [3.0, 4.0]}, "t", "x", "y"),
    ):
        ET.fromstring(svg)
    big = histogram_svg([random.random() for _ in range(50_000)], "t", "ms")
    assert len(big) < 20_000  # binned, not one element per request
