"""MLflow tracking over its REST API (standard library only: the training image needs no MLflow
client). Configured like the MLflow client: MLFLOW_TRACKING_URI (http or https),
MLFLOW_EXPERIMENT_NAME, and MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD."""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_EXPERIMENT = "aistack-finetune"
# MLflow's log-batch limits: 1000 metrics and 100 params per request.
MAX_METRICS, MAX_PARAMS = 1000, 100


class TrackingError(RuntimeError):
    pass


class MlflowTracker:
    """One MLflow run: created on start, or continued by id when a training run resumes."""

    def __init__(self, uri: str, experiment: str, timeout: float = 30) -> None:
        if not uri.startswith(("http://", "https://")):
            raise TrackingError(f"MLFLOW_TRACKING_URI must be an http(s) URL, got {uri!r}")
        self.uri = uri.rstrip("/")
        self.experiment = experiment
        self.timeout = timeout
        self.run_id = ""
        self.headers = {"Content-Type": "application/json"}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN", "")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user:
            secret = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()

    @classmethod
    def from_env(cls) -> MlflowTracker | None:
        uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        if not uri:
            return None
        return cls(uri, os.environ.get("MLFLOW_EXPERIMENT_NAME", "") or DEFAULT_EXPERIMENT)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.uri}/api/2.0/mlflow/{path}", data=data, method=method, headers=self.headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise TrackingError(f"MLflow {path}: HTTP {exc.code}: {detail}") from exc
        except OSError as exc:
            raise TrackingError(f"MLflow at {self.uri} unreachable ({path}): {exc}") from exc

    def _experiment_id(self) -> str:
        query = urllib.parse.urlencode({"experiment_name": self.experiment})
        try:
            found = self._call("GET", f"experiments/get-by-name?{query}")
            return str(found["experiment"]["experiment_id"])
        except TrackingError as exc:
            if "RESOURCE_DOES_NOT_EXIST" not in str(exc):
                raise
        created = self._call("POST", "experiments/create", {"name": self.experiment})
        return str(created["experiment_id"])

    def start(self, run_name: str, run_id: str = "") -> str:
        """Creates the run, or marks an existing one (a resumed training) running again."""
        if run_id:
            self._call("POST", "runs/update", {"run_id": run_id, "status": "RUNNING"})
            self.run_id = run_id
            return run_id
        run = self._call(
            "POST",
            "runs/create",
            {
                "experiment_id": self._experiment_id(),
                "run_name": run_name,
                "start_time": int(time.time() * 1000),
                "tags": [{"key": "mlflow.runName", "value": run_name}],
            },
        )
        self.run_id = str(run["run"]["info"]["run_id"])
        return self.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        items = [{"key": k, "value": str(v)[:6000]} for k, v in sorted(params.items())]
        for start in range(0, len(items), MAX_PARAMS):
            self._call(
                "POST",
                "runs/log-batch",
                {"run_id": self.run_id, "params": items[start : start + MAX_PARAMS]},
            )

    def log_metrics(self, rows: list[tuple[str, float, int]]) -> None:
        """(key, value, step) rows."""
        now = int(time.time() * 1000)
        items = [
            {"key": key, "value": float(value), "step": int(step), "timestamp": now}
            for key, value, step in rows
        ]
        for start in range(0, len(items), MAX_METRICS):
            self._call(
                "POST",
                "runs/log-batch",
                {"run_id": self.run_id, "metrics": items[start : start + MAX_METRICS]},
            )

    def set_tags(self, tags: dict[str, str]) -> None:
        self._call(
            "POST",
            "runs/log-batch",
            {"run_id": self.run_id, "tags": [{"key": k, "value": v} for k, v in tags.items()]},
        )

    def finish(self, status: str = "FINISHED") -> None:
        self._call(
            "POST",
            "runs/update",
            {"run_id": self.run_id, "status": status, "end_time": int(time.time() * 1000)},
        )
