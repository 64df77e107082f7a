"""RETRIEVAL_BACKEND=qdrant: the router reads the RAG service's Qdrant collection directly, by
the service's read contract (services/rag_pipeline/README.md), from a collection the real
service wrote (embedded Qdrant on disk, main .venv) with queries embedded by the same loopback
MiniLM server; every failure becomes retrieval_error, never an invented context."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from aistack_agents import rag
from aistack_agents.rag import QdrantRetriever, RetrievalError
from aistack_agents.settings import Settings
from tests.agents.conftest import EMBEDDING_MODEL, LONGHORN_V2, RAG_DOCS, REPO, ScriptedLLM
from tests.agents.test_router import RAG, run, score, settings_for
from tests.conftest import free_port


def contract() -> dict[str, Any]:
    readme = (REPO / "services" / "rag_pipeline" / "README.md").read_text()
    section = readme.split("## Read contract for direct readers", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "the RAG service's README has no read contract block"
    return dict(json.loads(block.group(1)))


def test_the_reader_follows_the_published_contract() -> None:
    c = contract()
    assert c["read_contract"] == rag.READ_CONTRACT
    assert (c["dense_vector"], c["version_field"], c["head_field"]) == (
        rag.DENSE_VECTOR,
        rag.VERSION_FIELD,
        rag.HEAD_FIELD,
    )
    assert set(rag.CHUNK_FIELDS) <= set(c["chunk_fields"])


@pytest.fixture(scope="module")
def collection(rag_qdrant: Path) -> Path:
    """The service's collection plus what a killed write leaves: "longhorn" chunks of a
    version whose head switch never came (same vectors, so they rank alike), and a leftover
    of "timeslicing" under its document's emptied head (a delete under way)."""
    client = QdrantClient(path=str(rag_qdrant))
    try:
        records, _ = client.scroll("docs", limit=100, with_vectors=True)
        chunks = [r for r in records if rag.HEAD_FIELD not in (r.payload or {})]
        stale = [
            models.PointStruct(
                id=str(uuid.uuid4()),
                vector=r.vector,  # type: ignore[arg-type]
                payload={**(r.payload or {}), rag.VERSION_FIELD: "killed", "text": "STALE"},
            )
            for r in chunks
            if (r.payload or {})["document_id"] == "longhorn"
        ]
        assert stale
        client.upsert("docs", points=stale)
        [head] = [
            r
            for r in records
            if (r.payload or {}).get("document_id") == "timeslicing"
            and rag.HEAD_FIELD in (r.payload or {})
        ]
        client.set_payload("docs", payload={rag.HEAD_FIELD: ""}, points=[head.id])
    finally:
        client.close()
    return rag_qdrant


def qdrant_settings(path: Path, url: str, **kw: Any) -> dict[str, Any]:
    return {
        "retrieval_backend": "qdrant",
        "qdrant_path": str(path),
        "embedding_url": url,
        "embedding_model": EMBEDDING_MODEL,
        "rag_collection": "docs",
        **kw,
    }


def test_rag_route_reads_the_collection_directly(
    llm: ScriptedLLM, collection: Path, embedding_url: str
) -> None:
    llm.expect(("classify", RAG), ("generate", "Two replicas [1]."), ("quality", score(90)))
    cfg = settings_for(llm, **qdrant_settings(collection, embedding_url, rag_top_n=3))
    state = run(cfg, "How many replicas does Longhorn keep of a volume?")
    llm.done()
    assert state["retrieval_error"] is None
    # The current version only: not the old text, not the killed write's chunks, nothing of
    # the document being deleted; one passage per document, best first.
    [passage] = state["context"]
    assert (passage["document_id"], passage["chunk_index"], passage["text"]) == (
        "longhorn",
        0,
        LONGHORN_V2,
    )
    assert 0 < passage["score"] <= 1.0 and passage["metadata"] == {}
    prompt = llm.of_kind("generate")[0]["body"]["messages"][1]["content"]
    assert f"[1] (longhorn#0) {LONGHORN_V2}" in prompt
    assert "STALE" not in prompt and RAG_DOCS["longhorn"] not in prompt
    assert "Sources:\n[1] longhorn (chunk 0)" in state["response"]


def retrieve(settings: Settings, query: str = "replicas") -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        reader = QdrantRetriever(settings)
        try:
            return await reader.retrieve(query)
        finally:
            await reader.close()

    return asyncio.run(go())


def ready(settings: Settings) -> str:
    async def go() -> str:
        reader = QdrantRetriever(settings)
        try:
            return await reader.ready()
        finally:
            await reader.close()

    return asyncio.run(go())


def test_failures_are_retrieval_errors(
    llm: ScriptedLLM, collection: Path, embedding_url: str
) -> None:
    # Through the graph: the embedding server refuses the model, so no context and a notice.
    llm.expect(("classify", RAG), ("generate", "From the model alone."), ("quality", score(60)))
    cfg = settings_for(llm, **qdrant_settings(collection, embedding_url, embedding_model="bge"))
    state = run(cfg, "How many replicas?")
    llm.done()
    assert state["context"] == [] and "answered 404" in (state["retrieval_error"] or "")
    assert state["response"].startswith("No context: retrieval failed (")
    # The reader alone, each way it can fail, with what to do.
    base = qdrant_settings(collection, embedding_url)
    with pytest.raises(RetrievalError, match="not configured: set QDRANT_URL"):
        retrieve(Settings(**{**base, "qdrant_path": None}))
    with pytest.raises(RetrievalError, match="set EMBEDDING_URL and EMBEDDING_MODEL"):
        retrieve(Settings(**{**base, "embedding_url": None}))
    with pytest.raises(RetrievalError, match=r"embedding server at .* unreachable"):
        retrieve(Settings(**{**base, "embedding_url": f"http://127.0.0.1:{free_port()}/v1"}))
    with pytest.raises(RetrievalError, match="Qdrant collection 'nope' at embedded Qdrant"):
        retrieve(Settings(**{**base, "rag_collection": "nope"}))
    down = {**base, "qdrant_path": None, "qdrant_url": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(RetrievalError, match=r"Qdrant collection .docs. at http://127\.0\.0\.1"):
        retrieve(Settings(**down))
    # Readiness says the same (it never raises).
    assert ready(Settings(**base)) == "ok"
    assert ready(Settings(**{**base, "rag_collection": "nope"})).startswith("collection 'nope'")
    assert ready(Settings(**{**base, "qdrant_path": None})).startswith("not configured (set QDRANT")
