"""The role's Llama Stack run config, started for real: `llama stack run` (the llama-stack
release of the role's image tag) with the run.yaml that roles/llama_stack renders, inference at
guidellm mock-server, vector_io on PostgreSQL + pgvector (pgserver), embeddings from the bundled
MiniLM over an OpenAI-compatible endpoint, traces exported over OTLP/HTTP to a loopback receiver.
llama-stack-client then checks health, lists the models, chats, inserts and queries vectors, and
lists and calls the tools of an MCP endpoint that wants an API key, through the role's nginx
proxy (mcp_peers.py).
Runs in .venv-llamastack (tests/llama_stack/test_in_side_venv.py starts it)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
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
from llama_stack_client import APIStatusError, LlamaStackClient
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from tests.conftest import free_port, stop, wait_http
from tests.llama_stack.mcp_peers import Guard, KeyedMcpServer

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
    """An OTLP/HTTP endpoint on loopback that records the paths and sizes of what it receives
    (and the bodies of the metric exports)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, int]] = []
        self.metrics: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append((self.path, len(body)))
                if self.path == "/v1/metrics":
                    receiver.metrics.append(body)
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
        # Export each span batch at once instead of every 5 s, metrics every 0.5 s (not 60 s).
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
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


def test_token_metrics_are_exported_over_otlp(stack: LlamaStackClient, peers: Peers) -> None:
    """0.2.23 serves no Prometheus endpoint: its metrics are OTLP counters (sink otel_metric) that
    the lab's collector passes to Prometheus' OTLP receiver. Which ones a chat produces, with
    which unit and attributes (Prometheus then names them <name>_total, e.g. prompt_tokens_total,
    labels model_id and provider_id)."""
    reply = stack.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Count my tokens."}]
    )
    usage = reply.usage if isinstance(reply.usage, dict) else dict(reply.usage or {})
    found: dict[str, Any] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(found) < 3:
        for body in list(peers.otlp.metrics):
            request = ExportMetricsServiceRequest.FromString(body)
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        if metric.name in ("prompt_tokens", "completion_tokens", "total_tokens"):
                            found[metric.name] = (resource, metric)
        time.sleep(0.2)
    assert sorted(found) == ["completion_tokens", "prompt_tokens", "total_tokens"], found
    resource, metric = found["completion_tokens"]
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "llama-stack-test"
    assert metric.unit == "tokens"
    assert metric.WhichOneof("data") == "sum" and metric.sum.is_monotonic
    # Cumulative, as Prometheus' OTLP receiver takes counters.
    assert metric.sum.aggregation_temporality == AggregationTemporality.Value(
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    )
    points = {
        tuple(sorted((a.key, a.value.string_value) for a in p.attributes)): p.as_int
        for p in metric.sum.data_points
    }
    labels = (("model_id", f"vllm/{CHAT_MODEL}"), ("provider_id", "vllm"))
    assert points.get(labels, 0) >= usage["completion_tokens"] > 0, points


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


# -- MCP tool groups behind an API key (the lab's MCP gateway) -------------------------------

GATEWAY_KEY = "test-gateway-key-" + uuid.uuid4().hex
GATEWAY_SECRET = {"secret": "mcp-gateway-api-key", "key": "api_key"}


@pytest.fixture(scope="module")
def keyed_mcp() -> Iterator[KeyedMcpServer]:
    server = KeyedMcpServer(GATEWAY_KEY)
    try:
        yield server
    finally:
        server.stop()


def test_a_tool_group_gets_no_static_header_in_this_release(
    stack: LlamaStackClient, keyed_mcp: KeyedMcpServer
) -> None:
    """Why roles/llama_stack runs the MCP proxy: 0.2.23 sends an MCP tool group only the headers
    of the calling request's provider data (mcp_headers); without them the key is missing."""
    stack.toolgroups.register(
        toolgroup_id="mcp::direct",
        provider_id="model-context-protocol",
        mcp_endpoint={"uri": keyed_mcp.url},
    )
    try:
        before = len(keyed_mcp.seen)
        with pytest.raises(APIStatusError):
            stack.tools.list(toolgroup_id="mcp::direct")
        assert keyed_mcp.seen[before:] and not any(keyed_mcp.seen[before:])
        # The per-request alternative: every client would have to hold the gateway's key.
        data = {"mcp_headers": {keyed_mcp.url: {"Authorization": f"Bearer {GATEWAY_KEY}"}}}
        tools = stack.tools.list(
            toolgroup_id="mcp::direct",
            extra_headers={"X-LlamaStack-Provider-Data": json.dumps(data)},
        )
        assert [t.identifier for t in tools] == ["echo"]
    finally:
        stack.toolgroups.unregister("mcp::direct")


def test_tool_calls_through_the_proxy_carry_the_gateway_key(
    stack: LlamaStackClient, keyed_mcp: KeyedMcpServer, tmp_path: Path
) -> None:
    """The proxy the role renders (the shared nginx guard macros, the key from its Secret by
    reference), in front of an MCP endpoint that wants the key: Llama Stack lists and calls the
    tools with no provider data, and the key arrives on every request."""
    try:
        guard = Guard(keyed_mcp.url.removesuffix("/mcp"), GATEWAY_SECRET, GATEWAY_KEY, tmp_path)
    except FileNotFoundError:
        pytest.skip("nginx not found: run `make tools` (Debian package nginx-light)")
    try:
        wait_http(f"{guard.base}/healthz", guard.proc, 30)
        # The ConfigMap's template holds no key; the container reads it from the Secret.
        assert GATEWAY_KEY not in guard.template
        assert "$http_authorization" not in guard.template  # no caller check: policy guards it
        env = {e["name"]: e for e in guard.container["env"]}
        assert env["MCP_UPSTREAM_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": GATEWAY_SECRET["secret"],
            "key": GATEWAY_SECRET["key"],
        }
        stack.toolgroups.register(
            toolgroup_id="mcp::gateway",
            provider_id="model-context-protocol",
            mcp_endpoint={"uri": f"{guard.base}/mcp"},
        )
        before = len(keyed_mcp.seen)
        tools = stack.tools.list(toolgroup_id="mcp::gateway")
        assert [t.identifier for t in tools] == ["echo"]
        result = stack.tool_runtime.invoke_tool(tool_name="echo", kwargs={"text": "lab"})
        assert result.error_message is None, result
        assert "echo: lab" in json.dumps(result.to_dict()), result
        seen = keyed_mcp.seen[before:]
        assert seen and set(seen) == {f"Bearer {GATEWAY_KEY}"}, seen
    finally:
        with contextlib.suppress(Exception):
            stack.toolgroups.unregister("mcp::gateway")
        stop(guard.proc)
