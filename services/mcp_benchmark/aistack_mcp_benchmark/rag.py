"""The RAG service, through its public HTTP API only (services/rag_pipeline/README.md):
POST /query, POST /ingest, GET /collections. Failures become :class:`RagError` with a message
that says what failed (unreachable, HTTP status and the service's own detail)."""

from __future__ import annotations

from typing import Any

import httpx


class RagError(Exception):
    """The RAG service is not configured, unreachable, or refused the request."""


def _detail(resp: httpx.Response) -> str:
    """The service's error detail: a string, or FastAPI's list of validation errors."""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        return resp.text[:300] or resp.reason_phrase
    if isinstance(detail, list):
        parts = []
        for err in detail:
            if isinstance(err, dict):
                loc = ".".join(str(p) for p in err.get("loc", []) if p != "body")
                parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return "; ".join(parts) or str(detail)
    return str(detail)


class RagClient:
    def __init__(self, url: str | None, api_key: str | None, timeout_s: float = 60.0) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))

    async def _call(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        if not self.url:
            raise RagError("no RAG service configured: set RAG_URL (the RAG service's base URL)")
        url = f"{self.url}{path}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as client:
                resp = await client.request(method, url, json=json)
        except httpx.TimeoutException as exc:
            raise RagError(f"RAG service at {self.url} timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise RagError(
                f"RAG service unreachable at {self.url}: {exc or type(exc).__name__}"
            ) from None
        if resp.status_code == 401:
            raise RagError(
                f"RAG service at {self.url} refused the API key (401): check RAG_API_KEY"
            )
        if resp.status_code >= 400:
            raise RagError(
                f"RAG service answered {method} {path} with {resp.status_code}: {_detail(resp)}"
            )
        try:
            data = resp.json()
        except ValueError:
            raise RagError(f"RAG service answered {method} {path} with no JSON") from None
        if not isinstance(data, dict):
            raise RagError(f"RAG service answered {method} {path} with unexpected JSON")
        return data

    async def query(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/query", {**body, "stream": False})

    async def ingest(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/ingest", body)

    async def collections(self) -> dict[str, Any]:
        return await self._call("GET", "/collections")
