"""Peers of the MCP tool-group test (test_server.py): an MCP server on loopback that wants an API
key (as the MCP gateway's AuthPolicy does) and records the Authorization header of every request,
and the nginx guard that roles/llama_stack puts between Llama Stack and the gateway, rendered from
the shared macros (roles/deploy/templates/aistack_k8s.j2) and run with the system's nginx."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import jinja2
from mcp.server.fastmcp import FastMCP

from tests.servers import UvicornThread, free_port

REPO = Path(__file__).resolve().parents[2]
MACROS = REPO / "roles" / "deploy" / "templates"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class KeyedMcpServer:
    """A streamable-HTTP MCP server (tool `echo`) on loopback that answers 401 unless a request
    carries `Authorization: Bearer <key>`; `seen` holds every request's Authorization value."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.seen: list[str] = []
        port = free_port()
        mcp = FastMCP("keyed", host="127.0.0.1", port=port, stateless_http=True, json_response=True)

        @mcp.tool()
        def echo(text: str) -> str:
            """Returns the text."""
            return f"echo: {text}"

        inner: App = mcp.streamable_http_app()
        server = self

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                auth = dict(scope["headers"]).get(b"authorization", b"").decode()
                server.seen.append(auth)
                if auth != f"Bearer {server.key}":
                    await send({"type": "http.response.start", "status": 401, "headers": []})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
            await inner(scope, receive, send)

        self.server = UvicornThread(app, port)
        self.url = f"{self.server.url}/mcp"

    def stop(self) -> None:
        self.server.stop()


def _macros() -> Any:
    """aistack_k8s.j2 as a module, with plain stand-ins for the Ansible filters it uses."""
    loader = jinja2.FileSystemLoader(MACROS)
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters["to_json"] = lambda value: json.dumps(value)
    env.filters["from_json"] = lambda text: json.loads(str(text))
    env.filters["combine"] = lambda a, b: {**a, **b}
    return env.get_template("aistack_k8s.j2").module


def _kubelet_env(container: dict[str, Any], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: secretKeyRef values from `secrets`,
    $(VAR) references to earlier variables expanded."""
    env: dict[str, str] = {}
    for item in container["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"], ref["key"]]
        else:
            env[item["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: env.get(m.group(1), m.group(0)),
                item["value"],
            )
    return env


class Guard:
    """The guard as roles/llama_stack runs it in front of the MCP gateway: the config template
    and container of the shared macros (no key check; the gateway's key from its Secret as the
    upstream credential), filled the way the nginx image's entrypoint does (envsubst of the
    defined variables only), served by nginx on loopback."""

    def __init__(self, upstream: str, secret: dict[str, str], key: str, workdir: Path) -> None:
        nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
        if nginx is None:
            raise FileNotFoundError("nginx")
        k8s = _macros()
        port = free_port()
        self.template = str(k8s.guard_conf(port, upstream, "30s"))
        upstream_ref = {**secret, "scheme": "Bearer"}
        self.container = json.loads(
            str(k8s.guard_container("nginx", port, {}, upstream=upstream_ref))
        )
        env = _kubelet_env(self.container, {(secret["secret"], secret["key"]): key})
        conf = re.sub(
            r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
            lambda m: env.get(m.group(1), m.group(0)),
            self.template,
        )
        (workdir / "conf.d").mkdir()
        (workdir / "conf.d" / "default.conf").write_text(conf, encoding="utf-8")
        temp = " ".join(
            f"{name}_temp_path {workdir / name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (workdir / "nginx.conf").write_text(
            f"worker_processes 1;\npid {workdir / 'nginx.pid'};\n"
            f"error_log {workdir / 'error.log'};\n"
            f"events {{}}\nhttp {{\n  access_log {workdir / 'access.log'};\n  {temp}\n"
            f"  include {workdir / 'conf.d'}/*.conf;\n}}\n",
            encoding="utf-8",
        )
        self.log = workdir / "error.log"
        self.proc = subprocess.Popen(
            [nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{port}"
