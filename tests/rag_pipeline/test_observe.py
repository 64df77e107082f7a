"""Observability (issue #14, item 6): OpenTelemetry traces into a real OTLP/HTTP receiver on
loopback, JSON on every stderr line of ``rag-pipeline serve`` (uvicorn's access log too), and
/metrics without the API key by setting."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from fastapi.testclient import TestClient

from rag_pipeline.main import create_app
from rag_pipeline.observe import tracing_configured
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings
from tests.conftest import free_port, stop, wait_http
from tests.rag_pipeline.conftest import serve

# No model and no store needed: /health, /metrics and auth only.
LIGHT = {"embedding_backend": "openai", "embedding_url": "http://127.0.0.1:9/v1"}


class _OtlpReceiver(BaseHTTPRequestHandler):
    """OTLP/HTTP traces (protobuf): decodes each export into its spans."""

    spans: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb

        request = pb.ExportTraceServiceRequest()
        request.ParseFromString(self.rfile.read(int(self.headers["content-length"])))
        for rs in request.resource_spans:
            resource = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    type(self).spans.append(
                        {
                            "path": self.path,
                            "name": span.name,
                            "trace": span.trace_id.hex(),
                            "id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "service": resource.get("service.name"),
                        }
                    )
        data = pb.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def otlp_endpoint() -> Iterator[str]:
    pytest.importorskip("opentelemetry.sdk", reason="pip install 'rag-pipeline[otel]'")
    pytest.importorskip("opentelemetry.instrumentation.fastapi")
    _OtlpReceiver.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtlpReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_tracing_is_off_unless_an_otlp_endpoint_is_set() -> None:
    assert not tracing_configured({})
    assert tracing_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert tracing_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    assert not tracing_configured(endpoint)


def test_a_query_is_traced_with_a_span_per_stage(
    make_pipeline: Callable[..., Pipeline],
    otlp_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    app = create_app(pipeline=make_pipeline())
    doc = {"text": "GPU time-slicing lets several pods share one GPU.", "document_id": "gpu"}
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.post("/ingest", json=doc).raise_for_status()
        client.post("/query", json={"query": "share a GPU?"}).raise_for_status()
        streamed = client.post("/query", json={"query": "share a GPU?", "stream": True})
        assert "event: done" in streamed.text
        client.get("/health").raise_for_status()
    # Shutting the app down flushed the spans.
    spans = _OtlpReceiver.spans
    assert spans and {s["path"] for s in spans} == {"/v1/traces"}
    assert {s["service"] for s in spans} == {"rag-pipeline"}
    by_id = {s["id"]: s for s in spans}
    queries = [s for s in spans if s["name"] == "POST /query"]
    assert len(queries) == 2, sorted(s["name"] for s in spans)
    for server_span in queries:
        stages = {}
        for s in spans:
            ancestor = s
            while ancestor["parent"] in by_id and ancestor["id"] != server_span["id"]:
                ancestor = by_id[ancestor["parent"]]
            if ancestor["id"] == server_span["id"] and s["name"].startswith("rag."):
                stages[s["name"]] = s
        assert set(stages) == {"rag.embed", "rag.search", "rag.rerank", "rag.generate"}
        assert {s["trace"] for s in stages.values()} == {server_span["trace"]}
    assert not [s for s in spans if "health" in s["name"]]  # probes are not traced


def test_metrics_need_the_key_unless_public() -> None:
    with TestClient(create_app(Settings(api_key="k", **LIGHT))) as client:  # type: ignore[arg-type]
        assert client.get("/metrics").status_code == 401
        auth = {"Authorization": "Bearer k"}
        assert client.get("/metrics", headers=auth).status_code == 200
    public = Settings(api_key="k", metrics_public=True, **LIGHT)  # type: ignore[arg-type]
    with TestClient(create_app(public)) as client:
        r = client.get("/metrics")
        assert r.status_code == 200 and "rag_http_requests_total" in r.text
        assert client.get("/documents").status_code == 401  # only /metrics is opened


def test_every_log_line_of_the_served_service_is_json() -> None:
    port = free_port()
    env = {
        **dict(__import__("os").environ),
        **{k.upper(): v for k, v in LIGHT.items()},
        "API_KEY": "k",
        "METRICS_PUBLIC": "true",
        "LOG_LEVEL": "INFO",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    cmd = [sys.executable, "-m", "rag_pipeline.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", proc, 60)
        assert httpx.get(f"{url}/metrics").status_code == 200
        assert httpx.get(f"{url}/documents").status_code == 401
        assert httpx.get(f"{url}/nowhere").status_code == 404
    finally:
        stop(proc)
    _, stderr = proc.communicate(timeout=30)
    lines = [line for line in stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # fails on any plain-text line
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "uvicorn.access", "rag_pipeline.http"} <= loggers, loggers
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert {(r["method"], r["path"], r["status"]) for r in access} >= {
        ("GET", "/metrics", 200),
        ("GET", "/documents", 401),
        ("GET", "/nowhere", 404),
    }
    assert all(r["client"].startswith("127.0.0.1") for r in access)
