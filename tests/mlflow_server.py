"""A real MLflow tracking server for the tests (``mlflow server``, SQLite backend) from
.venv-mlflow (`make mlflow`), and the few REST calls the tests make to it (stdlib only: every
venv can use it). The session fixture ``mlflow_server`` lives in tests/conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPO, free_port, stop, wait_http

MLFLOW = REPO / ".venv-mlflow" / "bin" / "mlflow"


@dataclass
class MlflowServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def experiment_id(self, name: str) -> str | None:
        """The experiment's id, or None when it does not exist."""
        query = urllib.parse.urlencode({"experiment_name": name})
        try:
            found = self._call("GET", f"/api/2.0/mlflow/experiments/get-by-name?{query}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return str(found["experiment"]["experiment_id"])

    def create_experiment(self, name: str) -> str:
        return str(
            self._call("POST", "/api/2.0/mlflow/experiments/create", {"name": name})[
                "experiment_id"
            ]
        )

    def search_traces(self, experiment_id: str) -> list[dict[str, Any]]:
        """Trace infos of an experiment (MLflow 3 REST API), newest first."""
        location = {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": experiment_id},
        }
        found = self._call("POST", "/api/3.0/mlflow/traces/search", {"locations": [location]})
        return list(found.get("traces", []))

    def wait_traces(
        self, experiment_id: str, count: int, timeout: float = 30
    ) -> list[dict[str, Any]]:
        """Polls until the experiment holds ``count`` finished traces: spans arrive in batches,
        and a trace stays IN_PROGRESS until its root span is in."""
        deadline = time.monotonic() + timeout
        while True:
            traces = self.search_traces(experiment_id)
            done = [t for t in traces if t.get("state") != "IN_PROGRESS"]
            if len(done) >= count or time.monotonic() > deadline:
                return traces
            time.sleep(0.3)

    def trace_spans(self, trace_id: str) -> list[dict[str, Any]]:
        """The trace's spans in start order, each with ``attributes`` decoded to a dict and
        ``span_id``/``parent_span_id`` as MLflow returns them (base64)."""
        query = urllib.parse.urlencode({"trace_id": trace_id})
        spans = self._call("GET", f"/api/3.0/mlflow/traces/get?{query}")["trace"]["spans"]
        for span in spans:
            span["attributes"] = {a["key"]: _value(a["value"]) for a in span.get("attributes", [])}
        return sorted(spans, key=lambda s: int(s["start_time_unix_nano"]))


def _value(value: dict[str, Any]) -> Any:
    """An OTLP AnyValue as MLflow returns it (JSON attributes such as mlflow.spanInputs come
    back parsed, as kvlist/array values)."""
    scalars = (
        ("string_value", str),
        ("int_value", int),
        ("double_value", float),
        ("bool_value", bool),
    )
    for kind, cast in scalars:
        if kind in value:
            return cast(value[kind])
    if "kvlist_value" in value:
        return {
            kv["key"]: _value(kv.get("value", {})) for kv in value["kvlist_value"].get("values", [])
        }
    if "array_value" in value:
        return [_value(v) for v in value["array_value"].get("values", [])]
    return None


def start_mlflow(tmp: Path | None = None, timeout: float = 240) -> MlflowServer:
    """``mlflow server`` on a free loopback port with a SQLite backend store in ``tmp``: one
    worker and no job runner (nothing here schedules MLflow jobs; it halves the start-up)."""
    tmp = tmp or Path(tempfile.mkdtemp(prefix="mlflow-"))
    port = free_port()
    log = tmp / "mlflow.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("PYTHONPATH", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(MLFLOW),
                "server",
                "--backend-store-uri",
                f"sqlite:///{tmp / 'mlflow.db'}",
                "--default-artifact-root",
                str(tmp / "artifacts"),
                # Where proxied uploads (mlflow-artifacts:/ locations) land: not the cwd.
                "--artifacts-destination",
                str(tmp / "proxied-artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", proc, timeout)
    except RuntimeError as exc:
        stop(proc)
        raise RuntimeError(f"{exc}\n{log.read_text(errors='replace')[-3000:]}") from exc
    return MlflowServer(url, proc, log)
