"""The RAG service under Prometheus: the dashboard's and the alert rules' metric names against
its real /metrics, and a real Prometheus (Debian's `prometheus`, `make tools`) scraping it with
the API key as the ServiceMonitor does."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from rag_pipeline.main import create_app
from rag_pipeline.pipeline import Pipeline
from tests.conftest import free_port, stop, wait_http
from tests.promql import dashboard_exprs, exposed, metric_names, rule_exprs
from tests.rag_pipeline.conftest import API_KEY, serve


def _families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def test_dashboard_and_rules_query_what_the_service_exports(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    known = exposed(_families(response.text))
    exprs = dashboard_exprs("rag-pipeline") + [
        e for _, e in rule_exprs() if any(n.startswith("rag_") for n in metric_names(e))
    ]
    assert len(exprs) > 2
    for expr in exprs:
        names = metric_names(expr)
        assert names and names <= known, f"{sorted(names - known)} in {expr}"


def _query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_a_real_prometheus_scrapes_the_service(make_pipeline: Callable[..., Pipeline]) -> None:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("prometheus not found: run `make tools` (Debian package prometheus)")
    app = create_app(pipeline=make_pipeline(api_key=API_KEY))
    with serve(app) as rag:
        # Traffic to count: two queries of an empty store and one unauthorised call.
        for headers in ({"Authorization": f"Bearer {API_KEY}"},) * 2 + ({},):
            request = urllib.request.Request(
                f"{rag}/query",
                data=json.dumps({"question": "What is time-slicing?"}).encode(),
                headers={"Content-Type": "application/json", **headers},
            )
            with contextlib.suppress(urllib.error.HTTPError):  # the 401 is counted too
                urllib.request.urlopen(request, timeout=30).close()
        work = Path(tempfile.mkdtemp(prefix="prometheus-"))
        target = urllib.parse.urlsplit(rag).netloc
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "rag-pipeline",
                    "metrics_path": "/metrics",
                    # The ServiceMonitor's way: the service's own API key as bearer token.
                    "authorization": {"type": "Bearer", "credentials": API_KEY},
                    "static_configs": [{"targets": [target]}],
                }
            ],
        }
        (work / "prometheus.yml").write_text(json.dumps(config))
        port = free_port()
        with open(work / "prometheus.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    exe,
                    f"--config.file={work / 'prometheus.yml'}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        prometheus = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{prometheus}/-/ready", proc, 60)
            deadline = time.monotonic() + 30
            while True:
                found = _query(prometheus, 'rag_http_requests_total{route="/query"}')
                if found or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            by_status = {r["metric"]["status"]: float(r["value"][1]) for r in found}
            assert by_status.get("401") == 1.0, (found, (work / "prometheus.log").read_text())
            assert sum(by_status.values()) == 3.0
            [up] = _query(prometheus, 'up{job="rag-pipeline"}')
            assert up["value"][1] == "1"
        finally:
            stop(proc)
            shutil.rmtree(work, ignore_errors=True)
