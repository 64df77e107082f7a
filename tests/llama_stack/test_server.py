"""The role's Llama Stack run config, started for real: `llama stack run` (the llama-stack
release of the role's image tag) with the run.yaml that roles/llama_stack renders, inference at
guidellm mock-server, vector_io on PostgreSQL + pgvector (pgserver), embeddings from the bundled
MiniLM over an OpenAI-compatible endpoint, traces exported over OTLP/HTTP to a loopback receiver.
llama-stack-client then checks health, lists the models, chats, inserts and queries vectors.
Runs in .venv-llamastack (tests/llama_stack/test_in_side_venv.py starts it)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import psycopg2
import pytest
import yaml
from llama_stack_client import LlamaStackClient

from tests.conftest import free_port, stop, wait_http

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "llama_stack"
MAIN_BIN = REPO / ".venv" / "bin"
DEFAULTS: dict[str, Any] = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
CHAT_MODEL = "mock-llm"
EMBED_MODEL = DEFAULTS["llama_stack_embedding_model"]


def render_run_config(**overrides: Any) -> str:
    """roles/llama_stack/templates/run.yaml.j2 with the role's defaults and the overrides (the
    template uses plain Jinja filters only, so Ansible is not needed to render it). No MCP tool
    group: its default is the lab's MCP gateway, which does not run here."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"), undefined=jinja2.StrictUndefined
    )
    settings = {**DEFAULTS, "llama_stack_mcp_endpoints": [], **overrides}
    # A default that is still a Jinja expression (Ansible resolves it) would be rendered as its
    # text here: the test must set every such setting that the template uses.
    source = (ROLE / "templates" / "run.yaml.j2").read_text()
    used = jinja2.meta.find_undeclared_variables(env.parse(source))
    unresolved = sorted(k for k in used if "{{" in str(settings.get(k, "")))
    assert not unresolved, f"set these in the test: {unresolved}"
    return env.get_template("run.yaml.j2").render(settings)


class OtlpReceiver:
    """An OTLP/HTTP endpoint on loopback that records the paths and sizes of what it receives."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append((self.path, len(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@dataclass
class Peers:
    """What the run config points at: the LLM, the embeddings server, PostgreSQL, OTLP."""

    llm_url: str
    embed_url: str
    pg_socket_dir: str
    otlp: OtlpReceiver


def _popen(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    pgserver = pytest.importorskip("pgserver")
    for exe in ("guidellm", "python"):
        if not (MAIN_BIN / exe).exists():
            pytest.skip(f"the main .venv has no {exe} (run `make venv`)")
    logs = tmp_path_factory.mktemp("peers")
    llm_port, embed_port = free_port(), free_port()
    mock = ["--model", CHAT_MODEL, "--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "12"]
    llm = _popen(
        [
            str(MAIN_BIN / "guidellm"),
            "mock-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(llm_port),
            *mock,
        ],
        logs / "llm.log",
    )
    # The main venv's own environment: the RAG service's PYTHONPATH must not matter here.
    main_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = str(Path(__file__).with_name("embedding_server.py"))
    embed = _popen(
        [str(MAIN_BIN / "python"), script, str(embed_port), EMBED_MODEL],
        logs / "embed.log",
        env=main_env,
    )
    pg_dir = tempfile.mkdtemp(prefix="llamastack-pg-")
    server = pgserver.get_server(pg_dir, cleanup_mode="delete")
    try:
        socket_dir = server.get_uri().split("host=")[1]
        # CloudNativePG runs this at initdb (cloudnative_pg_pgvector_enabled); so does the test.
        with psycopg2.connect(host=socket_dir, dbname="postgres", user="postgres") as conn:
            conn.cursor().execute("CREATE EXTENSION IF NOT EXISTS vector")
        for url, proc, log in (
            (f"http://127.0.0.1:{llm_port}/v1/models", llm, "llm.log"),
            (f"http://127.0.0.1:{embed_port}/v1/models", embed, "embed.log"),
        ):
            try:
                wait_http(url, proc, 90)
            except RuntimeError as exc:
                raise AssertionError(f"{exc}\n{(logs / log).read_text()[-3000:]}") from exc
        yield Peers(
            llm_url=f"http://127.0.0.1:{llm_port}/v1",
            embed_url=f"http://127.0.0.1:{embed_port}/v1",
            pg_socket_dir=socket_dir,
            otlp=OtlpReceiver(),
        )
    finally:
        stop(llm)
        stop(embed)
        server.cleanup()


def server_env(peers: Peers) -> dict[str, str]:
    """The env the LlamaStackDistribution sets (manifests.yml.j2), with loopback values."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        VLLM_URL=peers.llm_url,
        INFERENCE_MODEL=CHAT_MODEL,
        VLLM_MAX_TOKENS="64",
        VLLM_TLS_VERIFY="false",
        PGVECTOR_HOST=peers.pg_socket_dir,
        PGVECTOR_PORT="5432",
        PGVECTOR_DB="postgres",
        PGVECTOR_USER="postgres",
        PGVECTOR_PASSWORD="unused-trust-auth",
        OTEL_EXPORTER_OTLP_ENDPOINT=peers.otlp.url,
        OTEL_SERVICE_NAME="llama-stack-test",
        # Export each span batch at once instead of every 5 s.
        OTEL_BSP_SCHEDULE_DELAY="100",
        HF_HUB_OFFLINE="1",
        LLAMA_STACK_TELEMETRY_DISABLED="1",
        # LiteLLM (imported by the providers) would fetch its model price list from the internet.
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    return env


def start_server(config: str, peers: Peers, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    path = workdir / "run.yaml"
    path.write_text(config, encoding="utf-8")
    port = int(yaml.safe_load(config)["server"]["port"])
    exe = Path(sys.executable).parent / "llama"
    proc = _popen(
        [str(exe), "stack", "run", str(path), "--port", str(port)],
        workdir / "server.log",
        env={**server_env(peers), "HOME": str(workdir)},
    )
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def stack(peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaStackClient]:
    workdir = tmp_path_factory.mktemp("llamastack")
    config = render_run_config(
        llama_stack_port=free_port(),
        llama_stack_storage_dir=str(workdir / "store"),
        llama_stack_embedding_url=peers.embed_url,
        llama_stack_otlp_resolved=peers.otlp.url,
    )
    proc, url = start_server(config, peers, workdir)
    try:
        # A config that the server rejects ends the process: wait_http fails with its log.
        wait_http(f"{url}/v1/health", proc, 180)
    except RuntimeError as exc:
        stop(proc)
        raise AssertionError(f"{exc}\n{(workdir / 'server.log').read_text()[-6000:]}") from exc
    try:
        yield LlamaStackClient(base_url=url, timeout=60)
    finally:
        stop(proc)


def test_server_package_is_the_release_of_the_role_image() -> None:
    # One fact: the image the role deploys and the server this test starts.
    assert importlib.metadata.version("llama-stack") == str(DEFAULTS["llama_stack_image_tag"])
    assert importlib.metadata.version("llama-stack-client") == str(
        DEFAULTS["llama_stack_image_tag"]
    )


def models_by_served_name(stack: LlamaStackClient) -> dict[str, Any]:
    """The registered models by their name on the provider (the server prefixes identifiers
    with the provider id: vllm/<served name>)."""
    return {m.provider_resource_id: m for m in stack.models.list()}


def test_health_and_models(stack: LlamaStackClient) -> None:
    assert stack.inspect.health().status == "OK"
    models = models_by_served_name(stack)
    assert set(models) == {CHAT_MODEL, EMBED_MODEL}, models
    assert (models[CHAT_MODEL].provider_id, models[CHAT_MODEL].model_type) == ("vllm", "llm")
    embed = models[EMBED_MODEL]
    assert (embed.provider_id, embed.model_type) == ("embeddings", "embedding")
    assert int(embed.metadata["embedding_dimension"]) == DEFAULTS["llama_stack_embedding_dimension"]
    providers = {(p.api, p.provider_type) for p in stack.providers.list()}
    for expected in [
        ("inference", "remote::vllm"),
        ("vector_io", "remote::pgvector"),
        ("telemetry", "inline::meta-reference"),
        ("agents", "inline::meta-reference"),
        ("tool_runtime", "remote::model-context-protocol"),
    ]:
        assert expected in providers, providers


def test_chat_completion(stack: LlamaStackClient, peers: Peers) -> None:
    before = len(peers.otlp.posts)
    # The served name, as the agents call it (they know the model, not Llama Stack's prefix).
    reply = stack.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Say something."}]
    )
    text = reply.choices[0].message.content
    assert isinstance(text, str) and text.strip()
    usage = reply.usage if isinstance(reply.usage, dict) else dict(reply.usage or {})
    assert usage["completion_tokens"] > 0, usage
    # The telemetry provider exports the request's spans to the OTLP endpoint.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(path == "/v1/traces" for path, _ in peers.otlp.posts[before:]):
            break
        time.sleep(0.2)
    traces = [size for path, size in peers.otlp.posts[before:] if path == "/v1/traces"]
    assert traces and max(traces) > 0, peers.otlp.posts


def test_vectors_insert_and_query_on_pgvector(stack: LlamaStackClient, peers: Peers) -> None:
    embed = models_by_served_name(stack)[EMBED_MODEL]
    db = stack.vector_dbs.register(
        vector_db_id="lab-notes",
        embedding_model=embed.identifier,
        embedding_dimension=DEFAULTS["llama_stack_embedding_dimension"],
        provider_id="pgvector",
    )
    texts = {
        "gpu": "The GPU operator installs the NVIDIA driver and device plugin on every node.",
        "pg": "CloudNativePG runs PostgreSQL with the pgvector extension for embeddings.",
        "trace": "The OpenTelemetry collector forwards traces to MLflow.",
    }
    chunks = [
        {"content": text, "mime_type": "text/plain", "metadata": {"document_id": key}}
        for key, text in texts.items()
    ]
    # 0.2.23 backs a vector DB with a vector store of its own id (vs_...).
    stack.vector_io.insert(vector_db_id=db.identifier, chunks=chunks)
    result = stack.vector_io.query(
        vector_db_id=db.identifier,
        query="Which database stores the vectors?",
        params={"max_chunks": 3},
    )
    ranked = [c.metadata["document_id"] for c in result.chunks]
    assert ranked[0] == "pg", list(zip(ranked, result.scores, strict=True))
    assert sorted(ranked) == sorted(texts)
    # The vectors are rows in PostgreSQL (pgvector), not in the server's memory.
    table = "vs_" + db.identifier.replace("-", "_")
    with psycopg2.connect(host=peers.pg_socket_dir, dbname="postgres", user="postgres") as conn:
        cur = conn.cursor()
        cur.execute(f'SELECT count(*) FROM "{table}"')  # the server's own table
        row = cur.fetchone()
        assert row is not None and row[0] == len(texts)


def test_a_config_the_server_rejects_fails_to_start(peers: Peers, tmp_path: Path) -> None:
    config = yaml.safe_load(
        render_run_config(
            llama_stack_port=free_port(),
            llama_stack_storage_dir=str(tmp_path / "store"),
            llama_stack_embedding_url=peers.embed_url,
            llama_stack_otlp_resolved="",
        )
    )
    # A provider type that no release has: the server must refuse the whole config.
    config["providers"]["vector_io"][0]["provider_type"] = "remote::no-such-store"
    proc, url = start_server(yaml.safe_dump(config), peers, tmp_path)
    try:
        with pytest.raises(RuntimeError, match="exited"):
            wait_http(f"{url}/v1/health", proc, 120)
    finally:
        stop(proc)
    assert "no-such-store" in (tmp_path / "server.log").read_text()
