"""Fixtures for the agents tests, which run in .venv-agents (see test_in_side_venvs.py):
a scripted OpenAI-compatible server over loopback, the real RAG service (embedded Qdrant,
started from the main .venv as a subprocess), pgserver and guidellm mock-server (main .venv).
The MLflow tracking server is tests/conftest.py's mlflow_server."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, stop, wait_http
from tests.servers import serving, uvicorn_thread

REPO = Path(__file__).resolve().parents[2]
AGENTS_VENV = REPO / ".venv-agents"
CREW_VENV = REPO / ".venv-crew"

# Each stack has its own venv holding aistack_agents (they do not resolve together): the main
# venv collects only the runners (test_in_side_venvs.py), which run this folder in each side venv,
# and each side venv collects only its own suite.
SUITES = {
    # .venv-agents
    "router": [
        "test_router.py",
        "test_router_qdrant.py",
        "test_a2a.py",
        "test_plumbing.py",
        "test_bench.py",
    ],
    "crew": ["test_crew.py"],  # .venv-crew: CrewAI, a2a-sdk 1.x, no LangGraph
    "beeai": ["test_beeai.py"],  # .venv-beeai: beeai-framework, a2a-sdk 0.3
}
RUNNERS = ["test_in_side_venvs.py"]
if importlib.util.find_spec("aistack_agents") is None:
    SUITE = None
elif importlib.util.find_spec("crewai") is not None:
    SUITE = "crew"
elif importlib.util.find_spec("beeai_framework") is not None:
    SUITE = "beeai"
else:
    SUITE = "router"
collect_ignore_glob = [f for name, files in SUITES.items() if name != SUITE for f in files]
if SUITE is not None:
    collect_ignore_glob += RUNNERS

# Which node sent a chat request, told by its system prompt's first words: the router's nodes,
# the crew's roles (CrewAI's system prompt starts "You are <role>.") and the BeeAI agent
# (beeai-framework's system prompt opens with "# Role").
KINDS = {
    "You route": "classify",
    "You are a precise": "generate",
    "You grade": "quality",
    "You are Research analyst": "research",
    "You are Technical writer": "write",
    "You are Reviewer": "review",
    "# Role": "beeai",
    "You are a travel planner": "tp_plan",  # the benchmarks (aistack_agents.bench)
    "You collect travel information": "tp_collect",
    "You run a vending machine": "vending",
}


@dataclass(frozen=True)
class ToolCall:
    """A scripted reply that calls a tool (OpenAI tool_calls) instead of answering in text."""

    name: str
    arguments: dict[str, Any]


def _content_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content or ""


class ScriptedLLM:
    """Chat completions answered from a per-test script of (kind, reply) in call order."""

    def __init__(self) -> None:
        self.script: deque[tuple[str, str | ToolCall]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def expect(self, *steps: tuple[str, str | ToolCall]) -> None:
        with self.lock:
            self.script = deque(steps)
            self.requests = []
            self.errors = []

    def done(self) -> None:
        """Every scripted reply was used, each by the node it was meant for."""
        assert self.errors == [], self.errors
        assert not self.script, f"unused replies: {list(self.script)}"

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == kind]

    def _next(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        system = _content_text(body["messages"][0].get("content")) if body.get("messages") else ""
        kind = next((k for prefix, k in KINDS.items() if system.startswith(prefix)), "unknown")
        with self.lock:
            self.requests.append({"kind": kind, "body": body})
            if not self.script:
                self.errors.append(f"unscripted {kind} request")
                return 500, {"error": {"message": "no scripted reply left"}}
            want, reply = self.script.popleft()
            if want != kind:
                self.errors.append(f"expected a {want} request, got {kind}")
                return 500, {"error": {"message": f"expected {want}, got {kind}"}}
        prompt = sum(len(_content_text(m.get("content")).split()) for m in body["messages"])
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        finish = "stop"
        if isinstance(reply, ToolCall):
            arguments = json.dumps(reply.arguments)
            call = {"name": reply.name, "arguments": arguments}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": f"call_{len(self.requests)}", "type": "function", "function": call}
                ],
            }
            finish, reply = "tool_calls", arguments
        completion = len(reply.split())
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        llm = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send(
                        200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
                    )
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                self._send(*llm._next(body))

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def serve_in_thread(make_app: Callable[[int], Any]) -> Iterator[str]:
    """The ASGI app made for a free loopback port, under uvicorn in this process (an import
    cost such as beeai-framework's is paid once; an in-process MCP server needs no venv)."""
    port = free_port()
    with uvicorn_thread(make_app(port), port) as url:
        yield url


@pytest.fixture(scope="session")
def scripted_llm() -> Iterator[ScriptedLLM]:
    llm = ScriptedLLM()
    yield llm
    llm.close()


@pytest.fixture
def llm(scripted_llm: ScriptedLLM) -> ScriptedLLM:
    scripted_llm.expect()
    return scripted_llm


RAG_DOCS = {
    "longhorn": "Longhorn provides replicated block storage volumes for Kubernetes workloads.",
    "timeslicing": "GPU time-slicing lets several pods share one NVIDIA GPU on a node.",
}


@pytest.fixture(scope="session")
def rag_url() -> Iterator[str]:
    """The real RAG service (main .venv, this checkout's code) with embedded Qdrant on disk
    and two documents ingested over its HTTP API."""
    import httpx

    exe = REPO / ".venv" / "bin" / "rag-pipeline"
    if not exe.exists():
        pytest.skip("the main .venv (make venv) is needed to run the RAG service")
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="agents-rag-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "services" / "rag_pipeline"),
        "QDRANT_PATH": str(tmp / "qdrant"),
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "WARNING",
    }
    for var in ("LLM_URL", "LOCALAI_URL", "API_KEY", "VECTOR_STORE", "QDRANT_URL"):
        env.pop(var, None)
    argv = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with (
        open(tmp / "rag.log", "wb") as log,  # read it when the service does not come up
        serving(
            argv, port, "/ready", timeout=120, stdout=log, stderr=subprocess.STDOUT, env=env
        ) as url,
    ):
        for doc_id, text in RAG_DOCS.items():
            httpx.post(
                f"{url}/ingest", json={"document_id": doc_id, "text": text}, timeout=60
            ).raise_for_status()
        yield url


EMBEDDING_MODEL = "minilm"
# The RAG service's in-process API (rag_pipeline.embedded, main .venv): ingests RAG_DOCS into
# embedded Qdrant, embedding through the loopback embedding server as a cluster's service does
# (EMBEDDING_BACKEND=openai), then writes a new version of "longhorn".
INGEST = """
import json, sys
from rag_pipeline.embedded import EmbeddedPipeline
path, url, model, collection, docs, updated = sys.argv[1:]
with EmbeddedPipeline(qdrant_path=path, embedding_backend="openai", embedding_url=url,
                      embedding_model=model) as rag:
    rag.ingest([{"document_id": d, "text": t} for d, t in json.loads(docs).items()], collection)
    [result] = rag.ingest([{"document_id": "longhorn", "text": updated}], collection)
    assert result["status"] == "updated", result
"""
LONGHORN_V2 = (
    "Longhorn keeps two replicas of each block volume for Kubernetes workloads by default now."
)


@pytest.fixture(scope="session")
def embedding_url() -> Iterator[str]:
    """An OpenAI-compatible /v1/embeddings serving the bundled MiniLM (the Llama Stack tests'
    loopback server, main .venv): the RAG service's remote embedder and the router's query
    embedding call the same server, as in a cluster."""
    python = REPO / ".venv" / "bin" / "python"
    if not python.exists():
        pytest.skip("the main .venv (make venv) is needed to serve MiniLM embeddings")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = [str(python), str(REPO / "tests/llama_stack/embedding_server.py"), str(port)]
    with serving(
        [*argv, EMBEDDING_MODEL],
        port,
        "/v1/models",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**env, "HF_HUB_OFFLINE": "1"},
    ) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="session")
def rag_qdrant(embedding_url: str) -> Path:
    """An embedded Qdrant folder holding collection ``docs``, written by the real RAG service
    (RAG_DOCS, then a second version of "longhorn"); the process has exited, so the folder
    is free for one reader at a time."""
    python = REPO / ".venv" / "bin" / "python"
    path = Path(tempfile.mkdtemp(prefix="agents-qdrant-")) / "qdrant"
    env = {**os.environ, "PYTHONPATH": str(REPO / "services" / "rag_pipeline")}
    args = [str(path), embedding_url, EMBEDDING_MODEL, "docs", json.dumps(RAG_DOCS), LONGHORN_V2]
    done = subprocess.run(
        [str(python), "-c", INGEST, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return path


def start_server(**env: str) -> tuple[subprocess.Popen[bytes], str]:
    """`aistack-agents serve` (the router's A2A server) on a free loopback port."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if k not in ("LLM_URL", "LOCALAI_URL", "RAG_URL")}
    log = Path(tempfile.mkdtemp(prefix="agents-a2a-")) / "a2a.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(AGENTS_VENV / "bin" / "aistack-agents"), "serve", "--port", str(port)],
            env={**base, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc, 60)
    return proc, url


@pytest.fixture(scope="session")
def router_server(scripted_llm: ScriptedLLM, rag_url: str) -> Iterator[str]:
    """The router's A2A server on the scripted LLM and the RAG service, shared by the A2A
    tests and the benchmarks' A2A agent test."""
    proc, url = start_server(LLM_URL=scripted_llm.url, LLM_MODEL="scripted", RAG_URL=rag_url)
    yield url
    stop(proc)


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A real PostgreSQL from pgserver, one per session."""
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(tempfile.mkdtemp(prefix="agents-pg-"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def guidellm_url() -> Iterator[str]:
    """guidellm mock-server (main .venv) as the LLM: OpenAI-compatible, replies are random
    words (never the JSON the classifier and the judge ask for)."""
    exe = REPO / ".venv" / "bin" / "guidellm"
    if not exe.exists():
        pytest.skip("the main .venv (make venv) is needed to run guidellm mock-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = ["--model", "mock-llm", "--request-latency", "0.01", "--output-tokens", "16"]
    with serving(
        [str(exe), "mock-server", "--host", "127.0.0.1", "--port", str(port), *args],
        port,
        "/health",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    ) as url:
        yield f"{url}/v1"
