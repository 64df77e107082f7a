"""Where benchmark results go besides the results directory: an MLflow run through MLflow's REST
API (no mlflow package: the agents image stays light), and Prometheus metrics (pushed to a
Pushgateway and/or written as a node-exporter textfile)."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from aistack_agents.bench.report import atomic_write


class ExportError(RuntimeError):
    """MLflow or the Pushgateway refused the results (the message names the call)."""


class MlflowRest:
    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        # The MLflow client's credentials: a bearer token, else basic auth.
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
        auth = (user, password) if user and not token else None
        self.http = httpx.Client(timeout=timeout_s, headers=headers, auth=auth)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.url}{path}", json=body)
        if response.status_code >= 400:
            raise ExportError(
                f"MLflow {method} {path}: {response.status_code} {response.text[:300]}"
            )
        return response.json() if response.content else {}

    def experiment_id(self, name: str) -> str:
        query = urllib.parse.urlencode({"experiment_name": name})
        response = self.http.get(f"{self.url}/api/2.0/mlflow/experiments/get-by-name?{query}")
        if response.status_code == 200:
            return str(response.json()["experiment"]["experiment_id"])
        if response.status_code != 404:
            raise ExportError(f"MLflow experiments/get-by-name: {response.status_code}")
        created = self.call("POST", "/api/2.0/mlflow/experiments/create", {"name": name})
        return str(created["experiment_id"])

    def upload(self, artifact_uri: str, path: Path) -> bool:
        """Uploads a file through the server's artifact proxy; False when the run's artifacts do
        not go through the server (a path or bucket the client would have to reach itself)."""
        prefix = "mlflow-artifacts:"
        if not artifact_uri.startswith(prefix):
            return False
        rel = artifact_uri[len(prefix) :].lstrip("/")
        if "://" in rel:  # mlflow-artifacts://host/path
            rel = rel.split("/", 1)[1] if "/" in rel else ""
        url = f"{self.url}/api/2.0/mlflow-artifacts/artifacts/{rel.strip('/')}/{path.name}"
        response = self.http.put(url, content=path.read_bytes())
        if response.status_code >= 400:
            raise ExportError(f"MLflow artifact upload {path.name}: {response.status_code}")
        return True

    def close(self) -> None:
        self.http.close()


def log_to_mlflow(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: list[Path],
    series: dict[str, list[tuple[int, float]]] | None = None,
) -> dict[str, Any]:
    """One finished run: params, metrics (``series``: a metric's value per step, e.g. net
    worth per day), tags, and the reports as artifacts when the server proxies them."""
    if not tracking_uri.startswith(("http://", "https://")):
        raise ExportError(f"MLFLOW_TRACKING_URI {tracking_uri!r}: an http(s) tracking server")
    client = MlflowRest(tracking_uri)
    try:
        exp_id = client.experiment_id(experiment)
        now = int(time.time() * 1000)
        run = client.call(
            "POST",
            "/api/2.0/mlflow/runs/create",
            {
                "experiment_id": exp_id,
                "run_name": run_name,
                "start_time": now,
                "tags": [{"key": "aistack.benchmark", "value": run_name.split("-")[0]}],
            },
        )["run"]["info"]
        run_id = run["run_id"]
        entries = [
            {"key": k, "value": float(v), "timestamp": now, "step": 0} for k, v in metrics.items()
        ]
        for key, points in (series or {}).items():
            entries += [
                {"key": key, "value": float(v), "timestamp": now, "step": int(s)} for s, v in points
            ]
        plist = [{"key": k, "value": str(v)[:6000]} for k, v in params.items()]
        # log-batch takes at most 1000 metrics and 100 params a call.
        for i in range(0, max(len(entries), len(plist), 1), 1000):
            batch: dict[str, Any] = {"run_id": run_id, "metrics": entries[i : i + 1000]}
            if i == 0:
                batch["params"] = plist[:100]
            client.call("POST", "/api/2.0/mlflow/runs/log-batch", batch)
        for j in range(100, len(plist), 100):
            client.call(
                "POST",
                "/api/2.0/mlflow/runs/log-batch",
                {"run_id": run_id, "params": plist[j : j + 100]},
            )
        uploaded = [p.name for p in artifacts if client.upload(run["artifact_uri"], p)]
        client.call(
            "POST",
            "/api/2.0/mlflow/runs/update",
            {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)},
        )
        return {
            "experiment_id": exp_id,
            "run_id": run_id,
            "artifact_uri": run["artifact_uri"],
            "artifacts_uploaded": uploaded,
        }
    except httpx.HTTPError as exc:
        raise ExportError(f"MLflow at {tracking_uri}: {type(exc).__name__}: {exc}") from exc
    finally:
        client.close()


def prometheus_registry(benchmark: str, labels: dict[str, str], metrics: dict[str, float]) -> Any:
    """A registry with one gauge per metric: ``aistack_bench_<benchmark>_<metric>`` with the
    run's labels (agent, mode...)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    names = sorted(labels)
    for key, value in metrics.items():
        name = f"aistack_bench_{benchmark}_{key}".replace(".", "_").replace("-", "_")
        gauge = Gauge(name, f"{benchmark} {key}", names, registry=registry)
        (gauge.labels(**labels) if names else gauge).set(value)
    stamp = Gauge(
        f"aistack_bench_{benchmark}_last_run_timestamp_seconds",
        "when the run finished",
        names,
        registry=registry,
    )
    (stamp.labels(**labels) if names else stamp).set(time.time())
    return registry


def export_prometheus(
    benchmark: str,
    labels: dict[str, str],
    metrics: dict[str, float],
    pushgateway: str | None = None,
    textfile: str | Path | None = None,
    job: str = "aistack-bench",
) -> dict[str, Any]:
    from prometheus_client import push_to_gateway, write_to_textfile

    registry = prometheus_registry(benchmark, labels, metrics)
    out: dict[str, Any] = {}
    if textfile:
        Path(textfile).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(textfile), registry)
        out["textfile"] = str(textfile)
    if pushgateway:
        grouping = {"benchmark": benchmark}
        try:
            push_to_gateway(pushgateway, job=job, registry=registry, grouping_key=grouping)
        except OSError as exc:  # urllib's errors, refused connections alike
            raise ExportError(f"Pushgateway {pushgateway}: {exc}") from exc
        out["pushgateway"] = pushgateway
    return out


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)


__all__ = ["ExportError", "atomic_write", "export_prometheus", "log_to_mlflow"]
