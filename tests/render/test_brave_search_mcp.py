"""The Brave Search MCP server as the lab deploys it, for real: the release the project's image
installs (`npm ci` of images/brave-search-mcp/package-lock.json, once per session), started on
loopback with the environment of the rendered mcp-brave Deployment (a dummy API key: listing
tools calls no Brave API), behind the rendered guard (the system's nginx, filled the way the guard
image's entrypoint fills it). It proves the role's HTTP settings and the 2.x DNS-rebinding guard:
calls through the guard pass whatever Host the gateway sends, calls that bypass it do not."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.render.catalyst_helpers import Bundle, env_by_name
from tests.servers import free_port, serving

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "images" / "brave-search-mcp"
GATEWAY_KEY = "gateway-test-key"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _rendered(lab: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    servers = Bundle(lab / "mcp_servers")
    deployment = servers.get("Deployment", "mcp-brave")
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    template = servers.get("ConfigMap", "mcp-brave-guard")["data"]["default.conf.template"]
    return containers["server"], containers["guard"], template


@pytest.fixture(scope="session")
def brave_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The locked release installed as the image installs it (npm's cache makes reruns quick)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not (npm and node):
        pytest.skip("node and npm are needed for the Brave Search MCP server (Debian: nodejs npm)")
    root = tmp_path_factory.mktemp("brave-search-mcp")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(IMAGE / name, root / name)
    out = subprocess.run(
        [npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if out.returncode != 0:
        pytest.fail(f"npm ci of the image's lock failed:\n{out.stderr[-3000:]}")
    return root


@pytest.fixture(scope="module")
def brave(lab: Path, brave_install: Path) -> Iterator[str]:
    """The server with the rendered container's environment, on a free loopback port."""
    server, _guard, _template = _rendered(lab)
    env_vars = env_by_name(server)
    env = {name: var["value"] for name, var in env_vars.items() if "value" in var}
    assert env_vars["BRAVE_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "mcp-brave-api-key"
    assert (env["BRAVE_MCP_HOST"], env["BRAVE_MCP_PORT"]) == ("0.0.0.0", "8080")
    port = free_port()
    env.update(BRAVE_MCP_HOST="127.0.0.1", BRAVE_MCP_PORT=str(port), BRAVE_API_KEY="dummy-key")
    # The image's CMD (tests/deploy/test_images.py pins it), run where npm ci installed it.
    with serving(
        [str(brave_install / "node_modules" / ".bin" / "brave-search-mcp-server")],
        port,
        "/ping",
        timeout=30,
        cwd=brave_install,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    ) as url:
        yield url


@pytest.fixture(scope="module")
def guard(lab: Path, brave: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The rendered guard in front of the server: its template with the loopback ports, filled
    from the guard container's environment (the gateway key from its Secret), run by nginx."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if nginx is None:
        pytest.skip("nginx not found: run `make tools` (Debian package nginx-light)")
    _server, container, template = _rendered(lab)
    port = free_port()
    assert "listen 8090;" in template and "proxy_pass http://127.0.0.1:8080;" in template
    # No Host header set: nginx sends the proxy_pass host (loopback), whatever the caller sent.
    assert "proxy_set_header Host" not in template
    conf = template.replace("listen 8090;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("http://127.0.0.1:8080;", f"{brave};")
    env: dict[str, str] = {}
    for var in container["env"]:
        if "valueFrom" in var:
            assert var["name"] == "MCP_GATEWAY_API_KEY", var  # Brave's key is not the guard's
            env[var["name"]] = GATEWAY_KEY
        else:
            env[var["name"]] = var["value"]
    assert env["MCP_UPSTREAM_AUTHORIZATION"] == ""  # the caller's Authorization is dropped
    conf = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m[1], m[0]), conf)
    work = tmp_path_factory.mktemp("brave-guard")
    (work / "default.conf").write_text(conf)
    temp = " ".join(
        f"{name}_temp_path {work / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (work / "nginx.conf").write_text(
        f"worker_processes 1;\npid {work / 'nginx.pid'};\nerror_log {work / 'error.log'};\n"
        f"events {{}}\nhttp {{\n  access_log off;\n  {temp}\n"
        f"  include {work / 'default.conf'};\n}}\n"
    )
    with serving(
        [nginx, "-p", str(work), "-c", str(work / "nginx.conf"), "-g", "daemon off;"],
        port,
        "/healthz",
        timeout=30,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    ) as url:
        yield url


def _rpc(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a streamable-HTTP answer (JSON, or one SSE `data:` event)."""
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        (data,) = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        message: dict[str, Any] = json.loads(data)
    else:
        message = response.json()
    return message


def _tools(client: httpx.Client, url: str, headers: dict[str, str]) -> list[str]:
    """initialize, initialized, tools/list in one session: the tool names."""
    init = client.post(
        url,
        headers={**ACCEPT, **headers},
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "aistack-test", "version": "0"},
            },
        },
    )
    result = _rpc(init)["result"]
    assert result["serverInfo"]["name"]
    session = {**ACCEPT, **headers, "mcp-session-id": init.headers["mcp-session-id"]}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert client.post(url, headers=session, json=note).status_code == 202
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    listed = client.post(url, headers=session, json=listing)
    return [tool["name"] for tool in _rpc(listed)["result"]["tools"]]


def test_server_answers_ping_and_lists_its_brave_tools(brave: str) -> None:
    with httpx.Client(timeout=20) as client:
        assert client.get(f"{brave}/ping").json() == {"message": "pong"}
        names = _tools(client, f"{brave}/mcp", {})
    assert "brave_web_search" in names and "brave_local_search" in names
    assert all(name.startswith("brave_") for name in names), names


def test_through_the_guard_any_host_passes_and_bypassing_it_does_not(
    brave: str, guard: str
) -> None:
    """The gateway routes on the server's hostname (brave.<servers domain>); the guard proxies to
    loopback with a loopback Host, which BRAVE_MCP_ALLOWED_HOSTS admits. A caller reaching the
    server's port directly with the Service's or any other name is refused."""
    gateway_host = {"Host": "brave.mcp.aistack.internal"}
    key = {"Authorization": f"Bearer {GATEWAY_KEY}"}
    with httpx.Client(timeout=20) as client:
        names = _tools(client, f"{guard}/mcp", {**gateway_host, **key})
        assert "brave_web_search" in names
        # The guard admits only the gateway's key (the lab authenticates with api_key).
        bare = client.post(f"{guard}/mcp", headers={**ACCEPT, **gateway_host}, json={})
        assert bare.status_code == 401
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        direct = client.post(
            f"{brave}/mcp",
            headers={**ACCEPT, "Host": "mcp-brave.ai-stack.svc.cluster.local:8080"},
            json=listing,
        )
        assert direct.status_code == 403 and "invalid Host" in direct.text
        # A browser's page of another origin (DNS rebinding) is refused even through the guard;
        # mcp_servers_brave_allowed_origins (empty in the lab) would admit it.
        browser = client.post(
            f"{guard}/mcp",
            headers={**ACCEPT, **gateway_host, **key, "Origin": "https://evil.example"},
            json=listing,
        )
        assert browser.status_code == 403 and "invalid Origin" in browser.text
