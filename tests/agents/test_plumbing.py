"""The router against real outside servers: its traces in a real MLflow tracking server
(OTLP ingestion, SQLite backend; tests/mlflow_server.py) and its runs against guidellm
mock-server, whose replies are never the JSON the classifier and the judge ask for."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from typing import Any

from a2a.types import TaskState
from google.protobuf.json_format import MessageToDict

from tests.agents.conftest import AGENTS_VENV, REPO, ScriptedLLM, stop
from tests.agents.test_a2a import ask, start_server
from tests.conftest import free_port
from tests.mlflow_server import MlflowServer

RAG = '{"classification": "factual", "route": "rag"}'
DIRECT = '{"classification": "creative", "route": "direct"}'
NODES = ("classify_query", "retrieve_context", "generate_response", "check_quality")
OURS = ("LLM_URL", "LOCALAI_URL", "RAG_URL", "CHECKPOINT_DSN", "OTEL_EXPORTER_OTLP_ENDPOINT")


def score(n: int) -> str:
    return json.dumps({"score": n, "reason": "graded"})


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in OURS and not k.startswith("MLFLOW_")}
    return subprocess.run(
        [str(AGENTS_VENV / "bin" / "aistack-agents"), "router", *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_trace(mlflow: MlflowServer, experiment_id: str, trace_id: str) -> list[dict[str, Any]]:
    """The experiment holds exactly the run's trace (MLflow id tr-<OTel trace id>): the span
    ``router.run`` first, then its children (one per node run), in start order; spans of the
    caller (a2a-sdk's own request spans) around it are left out."""
    [info] = mlflow.wait_traces(experiment_id, 1)
    assert info["trace_id"] == f"tr-{trace_id}"
    assert info["state"] == "OK"
    spans = mlflow.trace_spans(info["trace_id"])
    [run] = [s for s in spans if s["name"] == "router.run"]
    children = [s for s in spans if s.get("parent_span_id") == run["span_id"]]
    return [run, *children]


def test_cli_run_is_one_mlflow_trace_with_a_span_per_node(
    llm: ScriptedLLM, rag_url: str, mlflow_server: MlflowServer
) -> None:
    # Quality fails once, the regeneration passes: six node runs, in this order.
    llm.expect(
        ("classify", RAG),
        ("generate", "Draft."),
        ("quality", score(40)),
        ("generate", "Longhorn replicates volumes [1]."),
        ("quality", score(90)),
    )
    experiment = f"agents-cli-{uuid.uuid4().hex[:8]}"  # created by the agent on first export
    query = "Which component replicates volumes?"
    proc = cli(
        "--query",
        query,
        "--verbose",
        LLM_URL=llm.url,
        LLM_MODEL="scripted",
        RAG_URL=rag_url,
        MLFLOW_TRACKING_URI=mlflow_server.url,
        MLFLOW_EXPERIMENT_NAME=experiment,
    )
    llm.done()
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout)
    assert len(state["trace_id"]) == 32
    experiment_id = mlflow_server.experiment_id(experiment)
    assert experiment_id is not None, f"the agent did not create experiment {experiment}"

    root, *nodes = one_trace(mlflow_server, experiment_id, state["trace_id"])
    assert not root.get("parent_span_id")  # the CLI's run is the trace's root
    assert [s["name"] for s in nodes] == [
        "router.classify_query",
        "router.retrieve_context",
        "router.generate_response",
        "router.check_quality",
        "router.generate_response",
        "router.check_quality",
    ]
    assert root["attributes"]["agents.query"] == query
    assert root["attributes"]["agents.route"] == "rag"
    assert root["attributes"]["agents.classification"] == "factual"
    assert root["attributes"]["agents.quality_score"] == 90
    assert root["attributes"]["agents.quality_passed"] is True
    assert root["attributes"]["agents.attempts"] == 2
    assert root["attributes"]["agents.context_chunks"] == len(state["context"]) > 0
    assert root["attributes"]["mlflow.spanInputs"] == {"query": query}  # MLflow's request
    [info] = mlflow_server.search_traces(experiment_id)
    assert json.loads(info["request_preview"]) == {"query": query}
    classify, retrieve, _, first_check, _, second_check = (s["attributes"] for s in nodes)
    assert (classify["agents.route"], classify["agents.classification"]) == ("rag", "factual")
    assert retrieve["agents.context_chunks"] == len(state["context"])
    assert (first_check["agents.quality_score"], second_check["agents.quality_score"]) == (40, 90)


def test_a2a_against_guidellm_mock_traced_in_mlflow(
    guidellm_url: str, mlflow_server: MlflowServer
) -> None:
    experiment_id = mlflow_server.create_experiment(f"agents-a2a-{uuid.uuid4().hex[:8]}")
    proc, url = start_server(
        LLM_URL=guidellm_url,
        LLM_MODEL="mock-llm",
        MLFLOW_TRACKING_URI=mlflow_server.url,
        MLFLOW_EXPERIMENT_ID=experiment_id,
        OTEL_BSP_SCHEDULE_DELAY="200",  # export within 0.2 s instead of 5 s
    )
    try:
        [event] = asyncio.run(ask(url, "What is GPU time-slicing?", streaming=False))
        task = event.task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        [data] = [MessageToDict(p.data) for p in task.artifacts[0].parts if p.HasField("data")]
        # No RAG_URL: route rag (the classifier default) without context, said so.
        assert (data["classification"], data["route"]) == ("factual", "rag")
        assert "RAG_URL" in data["retrieval_error"] and data["sources"] == []
        assert [(f["node"], f["outcome"]) for f in data["parse_fallbacks"]] == [
            ("classify_query", "default"),
            ("check_quality", "default"),
        ]
        spans = one_trace(mlflow_server, experiment_id, data["trace_id"])
    finally:
        stop(proc)
    # The run hangs under the A2A request (a2a-sdk traces its handler): one trace per message.
    assert spans[0].get("parent_span_id")
    assert [s["name"] for s in spans[1:]] == [f"router.{n}" for n in NODES]
    assert spans[0]["attributes"]["agents.parse_fallbacks"] == 2
    assert "agents.quality_score" not in spans[0]["attributes"]  # no score: not a made-up one


def test_cli_against_guidellm_mock_records_the_fallbacks(guidellm_url: str) -> None:
    proc = cli(
        "--query",
        "What is GPU time-slicing?",
        "--verbose",
        LLM_URL=guidellm_url,
        LLM_MODEL="mock-llm",
    )
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout)
    # The mock never answers the JSON asked for: each structured node retried once with the
    # stricter prompt, then applied its documented default, and the state says so.
    assert (state["classification"], state["route"]) == ("factual", "rag")
    assert "RAG_URL" in state["retrieval_error"] and state["context"] == []
    assert state["response"].startswith("No context: retrieval failed")
    assert (state["quality_score"], state["quality_passed"], state["attempts"]) == (None, False, 1)
    assert state["quality_reason"] == "unparseable quality score"
    fallbacks = state["parse_fallbacks"]
    assert [(f["node"], f["outcome"], len(f["raw"])) for f in fallbacks] == [
        ("classify_query", "default", 2),
        ("check_quality", "default", 2),
    ]
    assert fallbacks[0]["used"] == {"classification": "factual", "route": "rag"}
    assert fallbacks[1]["used"] == {"quality_score": None, "quality_passed": False}
    replies = [m["node"] for m in state["messages"] if m["role"] == "assistant"]
    assert replies == [
        "classify_query",
        "classify_query",
        "generate_response",
        "check_quality",
        "check_quality",
    ]
    assert all(m["content"].strip() for m in state["messages"])


def test_tracing_never_breaks_a_run_and_bad_uris_are_refused(llm: ScriptedLLM) -> None:
    llm.expect(("classify", DIRECT), ("generate", "Hi."), ("quality", score(80)))
    down = f"http://127.0.0.1:{free_port()}"  # nobody listens
    proc = cli("--query", "hello", LLM_URL=llm.url, MLFLOW_TRACKING_URI=down)
    llm.done()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["response"] == "Hi."
    assert "MLflow tracing" in proc.stderr and down in proc.stderr

    bad = cli("--query", "hello", LLM_URL=llm.url, MLFLOW_TRACKING_URI="sqlite:///mlflow.db")
    assert bad.returncode == 2
    assert "MLFLOW_TRACKING_URI must be" in bad.stderr and bad.stdout == ""
