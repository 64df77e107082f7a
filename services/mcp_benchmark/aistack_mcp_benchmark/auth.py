"""Bearer-token check in front of the MCP endpoint (a static shared token, MCP_AUTH_TOKEN).

The SDK's own auth is an OAuth resource server (token verifier, issuer metadata); a gateway
in front of this server authenticates users, so here one shared secret is enough."""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

REALM = "aistack-mcp-benchmark"


class BearerAuth:
    """ASGI middleware: requests under ``prefix`` need ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str | None, prefix: str = "/mcp") -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.prefix = prefix

    def _protected(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or not self._protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not given.strip():
            await _deny(send, "missing bearer token: send 'Authorization: Bearer <MCP_AUTH_TOKEN>'")
            return
        if not hmac.compare_digest(given.strip(), self.token):
            await _deny(send, "invalid bearer token (it does not match MCP_AUTH_TOKEN)")
            return
        await self.app(scope, receive, send)


async def _deny(send: Send, message: str) -> None:
    body = json.dumps({"error": "unauthorized", "error_description": message}).encode()
    challenge = f'Bearer realm="{REALM}", error="invalid_token"'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
