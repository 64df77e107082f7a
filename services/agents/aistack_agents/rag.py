"""The RAG service, through its public HTTP API only (POST /query with generate=false)."""

from __future__ import annotations

from typing import Any

import httpx

from aistack_agents.settings import Settings


class RetrievalError(RuntimeError):
    """Retrieval failed: no RAG service configured, unreachable, or an error status."""


class RagClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        headers = (
            {"Authorization": f"Bearer {settings.rag_api_key}"} if settings.rag_api_key else {}
        )
        self._http = httpx.AsyncClient(headers=headers, timeout=settings.rag_timeout_s)

    async def retrieve(self, query: str) -> list[dict[str, Any]]:
        """The top sources for the query: document_id, chunk_index, text, score, metadata."""
        base = self.settings.rag_url
        if not base:
            raise RetrievalError("no RAG service configured (set RAG_URL)")
        body: dict[str, Any] = {"query": query, "top_n": self.settings.rag_top_n, "generate": False}
        if self.settings.rag_collection:
            body["collection"] = self.settings.rag_collection
        url = base.rstrip("/") + "/query"
        try:
            resp = await self._http.post(url, json=body)
        except httpx.HTTPError as exc:
            raise RetrievalError(f"RAG service at {url} unreachable: {exc!r}") from exc
        if resp.status_code != 200:
            raise RetrievalError(
                f"RAG service at {url} answered {resp.status_code}: {resp.text[:300]}"
            )
        try:
            sources = resp.json()["sources"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RetrievalError(
                f"RAG service at {url} sent no 'sources': {resp.text[:300]}"
            ) from exc
        return [
            {
                "document_id": str(s["document_id"]),
                "chunk_index": int(s.get("chunk_index", 0)),
                "text": str(s["text"]),
                "score": float(s.get("score", 0.0)),
                "metadata": dict(s.get("metadata") or {}),
            }
            for s in sources
        ]

    async def ready(self) -> str:
        """'ok', 'not configured', or why the service is not ready."""
        if not self.settings.rag_url:
            return "not configured (RAG_URL)"
        try:
            resp = await self._http.get(self.settings.rag_url.rstrip("/") + "/ready")
        except httpx.HTTPError as exc:
            return f"unreachable: {exc!r}"
        return "ok" if resp.status_code == 200 else f"not ready ({resp.status_code})"

    async def close(self) -> None:
        await self._http.aclose()
