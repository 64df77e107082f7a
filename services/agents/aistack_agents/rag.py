"""Retrieval: the RAG service through its public HTTP API (POST /query with generate=false),
or, for the router with RETRIEVAL_BACKEND=qdrant, the service's Qdrant collection read directly
by the service's published read contract (services/rag_pipeline/README.md, "Read contract for
direct readers"); rag_pipeline itself is never imported."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from aistack_agents.settings import Settings

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient


class RetrievalError(RuntimeError):
    """Retrieval failed: no RAG service configured, unreachable, or an error status."""


async def _post_json(http: httpx.AsyncClient, url: str, body: dict[str, Any], peer: str) -> Any:
    """POST body to url and return the decoded JSON answer; whatever goes wrong (unreachable,
    an error status, no JSON) is a RetrievalError naming the peer and the URL."""
    try:
        resp = await http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise RetrievalError(f"{peer} at {url} unreachable: {exc!r}") from exc
    if resp.status_code != 200:
        raise RetrievalError(f"{peer} at {url} answered {resp.status_code}: {resp.text[:300]}")
    try:
        return resp.json()
    except ValueError as exc:
        raise RetrievalError(f"{peer} at {url} sent no JSON: {resp.text[:300]}") from exc


class Retriever(Protocol):
    async def retrieve(self, query: str) -> list[dict[str, Any]]: ...
    async def ready(self) -> str: ...
    async def close(self) -> None: ...


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
        answer = await _post_json(self._http, url, body, "RAG service")
        try:
            sources = answer["sources"]
        except (KeyError, TypeError) as exc:
            raise RetrievalError(
                f"RAG service at {url} sent no 'sources': {answer!r:.300}"
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


def number_passages(found: list[dict[str, Any]], sources: list[dict[str, Any]]) -> list[str]:
    """``[n] (document_id#chunk_index) text`` for each passage found, n its number in
    ``sources`` (the run's list, from 1): a new passage is appended, one already there keeps its
    number, so a run's citations stay stable across its searches (the crew's and the BeeAI
    agent's RAG tools)."""
    known = {(s["document_id"], s["chunk_index"]): n for n, s in enumerate(sources, 1)}
    lines = []
    for source in found:
        key = (source["document_id"], source["chunk_index"])
        if key not in known:
            sources.append(source)
            known[key] = len(sources)
        lines.append(f"[{known[key]}] ({key[0]}#{key[1]}) {source['text']}")
    return lines


# The read contract of the RAG service's collections (README "Read contract for direct readers";
# tests/agents/test_router.py checks these against the README's contract block).
READ_CONTRACT = 1
DENSE_VECTOR = "dense"
VERSION_FIELD = "version_id"
HEAD_FIELD = "current_version_id"
CHUNK_FIELDS = ["document_id", VERSION_FIELD, "chunk_index", "text", "metadata"]


def is_current(payload: dict[str, Any], heads: dict[str, str]) -> bool:
    """The contract's rule: a chunk is current when its document's head names its version; a
    chunk without a version (rag_pipeline 0.2.0 and earlier) when its document has no head; an
    empty head (a delete under way) makes nothing current."""
    head = heads.get(str(payload.get("document_id", "")))
    version = payload.get(VERSION_FIELD)
    return version is None if head is None else bool(head) and version == head


class QdrantRetriever:
    """The RAG service's collection, read directly (dense search of its current chunks, one
    passage per document, its best chunk, as the service's /query ranks them). Read-only."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.collection = settings.rag_collection or "documents"
        headers = (
            {"Authorization": f"Bearer {settings.embedding_api_key}"}
            if settings.embedding_api_key
            else {}
        )
        self._http = httpx.AsyncClient(headers=headers, timeout=settings.rag_timeout_s)
        self._client: AsyncQdrantClient | None = None

    @property
    def where(self) -> str:
        return self.settings.qdrant_url or f"embedded Qdrant at {self.settings.qdrant_path}"

    def _missing(self) -> str | None:
        if not (self.settings.qdrant_url or self.settings.qdrant_path):
            return "set QDRANT_URL (or QDRANT_PATH for embedded Qdrant)"
        if not self.settings.embedding_url or not self.settings.embedding_model:
            return (
                "set EMBEDDING_URL and EMBEDDING_MODEL: the OpenAI-compatible embedding server "
                "and model the RAG service wrote the collection with"
            )
        return None

    def _qdrant(self) -> AsyncQdrantClient:
        if self._client is None:
            try:
                from qdrant_client import AsyncQdrantClient
            except ImportError as exc:
                raise RetrievalError(
                    "RETRIEVAL_BACKEND=qdrant needs qdrant-client (requirements/agents.txt)"
                ) from exc
            s = self.settings
            self._client = (
                AsyncQdrantClient(
                    url=s.qdrant_url,
                    api_key=s.qdrant_api_key,
                    timeout=math.ceil(s.rag_timeout_s),
                    check_compatibility=False,
                )
                if s.qdrant_url
                else AsyncQdrantClient(path=s.qdrant_path)
            )
        return self._client

    async def embed(self, text: str) -> list[float]:
        url = (self.settings.embedding_url or "").rstrip("/") + "/embeddings"
        body = {"model": self.settings.embedding_model, "input": [text]}
        answer = await _post_json(self._http, url, body, "embedding server")
        try:
            vector = [float(x) for x in answer["data"][0]["embedding"]]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RetrievalError(
                f"embedding server at {url} sent no embedding: {answer!r:.300}"
            ) from exc
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]  # as the service stores them (Cosine ranks alike)

    async def retrieve(self, query: str) -> list[dict[str, Any]]:
        """The best chunk of each of the top RAG_TOP_N documents: document_id, chunk_index,
        text, score, metadata (the HTTP path's fields)."""
        missing = self._missing()
        if missing:
            raise RetrievalError(f"RETRIEVAL_BACKEND=qdrant is not configured: {missing}")
        vector = await self.embed(query)
        try:
            return await self._search(vector)
        except RetrievalError:
            raise
        except Exception as exc:  # transport, 4xx/5xx, a wrong vector size: say which
            raise RetrievalError(await self._explain(exc, len(vector))) from exc

    async def _search(self, vector: list[float]) -> list[dict[str, Any]]:
        from qdrant_client import models

        client = self._qdrant()
        want = self.settings.rag_top_n
        best: dict[str, dict[str, Any]] = {}
        offset, page = 0, want * 4
        while True:
            points = (
                await client.query_points(
                    self.collection,
                    query=vector,
                    using=DENSE_VECTOR,
                    limit=page,
                    offset=offset,
                    with_payload=CHUNK_FIELDS,
                )
            ).points
            doc_ids = sorted({str((p.payload or {}).get("document_id", "")) for p in points})
            heads: dict[str, str] = {}
            if doc_ids:
                head_filter = models.Filter(
                    must=[
                        models.FieldCondition(key="document_id", match=models.MatchAny(any=doc_ids))
                    ],
                    must_not=[
                        models.IsEmptyCondition(is_empty=models.PayloadField(key=HEAD_FIELD))
                    ],
                )
                records, _ = await client.scroll(
                    self.collection,
                    scroll_filter=head_filter,
                    limit=len(doc_ids) + 1,
                    with_payload=["document_id", HEAD_FIELD],
                    with_vectors=False,
                )
                heads = {
                    str((r.payload or {}).get("document_id")): str(
                        (r.payload or {}).get(HEAD_FIELD) or ""
                    )
                    for r in records
                }
            for p in points:
                payload = p.payload or {}
                if not is_current(payload, heads):
                    continue  # another version's chunk: never shown
                doc = str(payload["document_id"])
                if doc not in best:  # hits come best first: the document's best chunk
                    best[doc] = {
                        "document_id": doc,
                        "chunk_index": int(payload.get("chunk_index", 0)),
                        "text": str(payload.get("text", "")),
                        "score": float(p.score),
                        "metadata": dict(payload.get("metadata") or {}),
                    }
            if len(best) >= want or len(points) < page:
                return list(best.values())[:want]
            offset += page
            page *= 2

    async def _explain(self, exc: Exception, dimension: int) -> str:
        """Why the search failed, with the collection's dense size when it differs from the
        query embedding's (EMBEDDING_MODEL is not the collection's model)."""
        why = f"Qdrant collection {self.collection!r} at {self.where}: {type(exc).__name__}: {exc}"
        try:
            info = await self._qdrant().get_collection(self.collection)
        except Exception:  # the first error is the one to report
            return why
        vectors = info.config.params.vectors
        dense = vectors.get(DENSE_VECTOR) if isinstance(vectors, dict) else None
        if dense is None:
            return f"{why} (it has no {DENSE_VECTOR!r} vector: not a RAG service collection)"
        if dense.size != dimension:
            return (
                f"{why} (its {DENSE_VECTOR!r} vectors have {dense.size} dimensions, "
                f"EMBEDDING_MODEL={self.settings.embedding_model} gives {dimension}: use the "
                "RAG service's embedding model, GET /collection-layout)"
            )
        return why

    async def ready(self) -> str:
        """'ok' when the collection exists; else why not (or 'not configured ...')."""
        missing = self._missing()
        if missing:
            return f"not configured ({missing})"
        try:
            # A point operation: Qdrant resolves the name when it is an alias (re-index).
            await self._qdrant().count(self.collection, exact=False)
        except RetrievalError as exc:
            return str(exc)
        except Exception as exc:  # readiness reports, never raises
            return f"collection {self.collection!r} at {self.where}: {type(exc).__name__}: {exc}"
        return "ok"

    async def close(self) -> None:
        await self._http.aclose()
        if self._client is not None:
            await self._client.close()


def make_retriever(settings: Settings) -> RagClient | QdrantRetriever:
    """The router's retriever for RETRIEVAL_BACKEND."""
    if settings.retrieval_backend == "qdrant":
        return QdrantRetriever(settings)
    return RagClient(settings)
