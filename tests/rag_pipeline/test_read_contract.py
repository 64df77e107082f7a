"""The read contract for direct readers (README "Read contract for direct readers"): its JSON
block agrees with rag_pipeline/layout.py, and a reader that follows it with qdrant-client alone
(no rag_pipeline code) finds only current chunks in a collection the service wrote, updated,
re-indexed (so its name is an alias) and that holds the leftovers of killed writes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from qdrant_client import QdrantClient, models

from rag_pipeline import layout
from rag_pipeline.embeddings import LocalEmbedder
from rag_pipeline.main import create_app
from rag_pipeline.pipeline import Pipeline

README = Path(__file__).resolve().parents[2] / "services" / "rag_pipeline" / "README.md"
NAME = "contract"
DOCS = {
    "storage": "Longhorn replicates block volumes across nodes. Each volume keeps three "
    "replicas by default. A failed replica is rebuilt from a healthy one.",
    "gpu": "GPU time-slicing lets several pods share one NVIDIA GPU. The device plugin "
    "advertises each GPU several times. Memory is not isolated between the pods.",
    "gone": "Volume snapshots of Longhorn are stored next to the replicas. A backup target "
    "keeps copies of the snapshots outside the cluster.",
}
UPDATED = (
    "Longhorn replicates block volumes across nodes. Each volume now keeps two replicas by "
    "default. A failed replica is rebuilt from a healthy one in the background."
)


def contract() -> dict[str, Any]:
    """The README's contract block (the first ```json block of the section)."""
    section = README.read_text().split("## Read contract for direct readers", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "the read contract section has no JSON block"
    return dict(json.loads(block.group(1)))


def test_contract_block_matches_the_layout() -> None:
    c = contract()
    assert c["read_contract"] == 1
    assert c["dense_vector"] == layout.DENSE and c["distance"] == layout.DISTANCE
    assert c["version_field"] == layout.VERSION_KEY
    assert c["head_field"] == layout.CURRENT_VERSION_KEY
    assert c["chunker_metadata_key"] == layout.CHUNKER_KEY


def read_current(
    client: QdrantClient, name: str, vector: list[float], limit: int, c: dict[str, Any]
) -> list[dict[str, Any]]:
    """The contract's reader, from the block's names only: dense search, the hits'
    documents' heads by filter, current chunks kept, further pages while too few."""
    fields = [*c["chunk_fields"], *c["optional_chunk_fields"]]
    kept: list[dict[str, Any]] = []
    offset, page = 0, limit
    while True:
        points = client.query_points(
            name,
            query=vector,
            using=c["dense_vector"],
            limit=page,
            offset=offset,
            with_payload=fields,
        ).points
        docs = sorted({str((p.payload or {})["document_id"]) for p in points})
        heads_filter = models.Filter(
            must=[models.FieldCondition(key="document_id", match=models.MatchAny(any=docs))],
            must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=c["head_field"]))],
        )
        records, _ = client.scroll(
            name,
            scroll_filter=heads_filter,
            limit=len(docs) + 1,
            with_payload=["document_id", c["head_field"]],
        )
        heads = {str(r.payload["document_id"]): str(r.payload[c["head_field"]]) for r in records}  # type: ignore[index]
        for p in points:
            payload = dict(p.payload or {})
            head = heads.get(payload["document_id"])
            version = payload.get(c["version_field"])
            if (version is None) if head is None else (bool(head) and version == head):
                kept.append(payload)
        if len(kept) >= limit or len(points) < page:
            return kept[:limit]
        offset += page
        page *= 2


def test_a_direct_reader_sees_only_current_chunks(
    make_pipeline: Callable[..., Pipeline], embedder: LocalEmbedder, tmp_path: Path
) -> None:
    c = contract()
    path = str(tmp_path / "qdrant")
    # Small chunks: each document is a few chunks, so versions differ chunk by chunk.
    pipeline = make_pipeline(qdrant_path=path, chunk_size=20, chunk_overlap=0)
    service = TestClient(create_app(pipeline=pipeline))
    service.__enter__()
    for doc_id, text in DOCS.items():
        r = service.post("/ingest", json={"document_id": doc_id, "text": text, "collection": NAME})
        assert r.status_code == 200, r.text
    r = service.post(
        "/ingest", json={"document_id": "storage", "text": UPDATED, "collection": NAME}
    )
    assert r.json()["status"] == "updated", r.text
    r = service.post(f"/collections/{NAME}/reindex", params={"wait": 60})
    assert r.json()["state"] == "succeeded", r.text
    described = service.get("/collection-layout").json()
    service.__exit__(None, None, None)
    pipeline.close()  # releases embedded Qdrant's folder lock (a second close does nothing)

    client = QdrantClient(path=path)
    try:
        # The name is an alias of a re-index build now; reads go through the name.
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        assert aliases[NAME].startswith(NAME + ".r"), aliases
        info = client.get_collection(NAME)
        vectors = info.config.params.vectors
        assert isinstance(vectors, dict)
        assert vectors[c["dense_vector"]].size == described["dimension"] == embedder.dimension
        assert info.config.metadata[c["chunker_metadata_key"]]["tokenizer"]  # type: ignore[index]

        chunks, _ = client.scroll(NAME, limit=1000, with_payload=True, with_vectors=True)
        current = [r for r in chunks if c["head_field"] not in (r.payload or {})]
        for r in current:
            assert set(c["chunk_fields"]) <= set(r.payload or {}), r.payload
        # Leftovers a killed write leaves: a version of "storage" whose head switch never came
        # (its chunks, same vectors, another version_id), and "gone" mid-delete (its head
        # emptied, its chunks still there).
        stale = [
            models.PointStruct(
                id=str(uuid.uuid4()),
                vector=r.vector,  # type: ignore[arg-type]
                payload={**(r.payload or {}), c["version_field"]: "killed", "text": "STALE"},
            )
            for r in current
            if (r.payload or {})["document_id"] == "storage"
        ]
        client.upsert(NAME, points=stale)
        heads, _ = client.scroll(
            NAME,
            scroll_filter=models.Filter(
                must=[
                    models.FieldCondition(key="document_id", match=models.MatchValue(value="gone"))
                ],
                must_not=[
                    models.IsEmptyCondition(is_empty=models.PayloadField(key=c["head_field"]))
                ],
            ),
            limit=10,
        )
        assert len(heads) == 1
        client.set_payload(NAME, payload={c["head_field"]: ""}, points=[heads[0].id])

        vector = embedder.embed_query("How many replicas does a Longhorn volume keep?").tolist()
        everything = client.query_points(
            NAME, query=vector, using=c["dense_vector"], limit=100, with_payload=True
        ).points
        texts = {str((p.payload or {}).get("text")) for p in everything}
        # Without the contract's filter a reader would show the leftovers: the test can fail.
        assert "STALE" in texts and any("Volume snapshots" in t for t in texts)

        read = read_current(client, NAME, vector, 3, c)
        assert read and all(p["text"] != "STALE" for p in read), read
        assert {p["document_id"] for p in read} <= {"storage", "gpu"}, read
        storage = [p for p in read if p["document_id"] == "storage"]
        assert storage and all(p["text"] in UPDATED for p in storage)
        assert "now keeps two replicas" in read[0]["text"], read[0]
        # All current chunks of every document, found past the first page of leftovers.
        every = read_current(client, NAME, vector, 100, c)
        assert sorted((p["document_id"], p["chunk_index"]) for p in every) == sorted(
            (str(r.payload["document_id"]), int(r.payload["chunk_index"]))  # type: ignore[index]
            for r in current
            if (r.payload or {})["document_id"] != "gone"
        )
    finally:
        client.close()
