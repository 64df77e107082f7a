"""Ingestion endpoints."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from rag_pipeline.dependencies import PipelineDep
from rag_pipeline.models import (
    BatchIngestRequest,
    BatchIngestResponse,
    DocumentIn,
    IngestRequest,
    IngestResponse,
    metadata_bytes,
    metadata_shape,
)
from rag_pipeline.routers.common import ERRORS, TOO_LARGE
from rag_pipeline.settings import Settings

router = APIRouter(prefix="/ingest", tags=["ingest"], responses={**ERRORS, **TOO_LARGE})


def _check_size(text: str, limit: int, what: str) -> None:
    if len(text) > limit:
        raise HTTPException(
            413,
            f"{what} has {len(text)} characters; the limit is {limit} (MAX_DOCUMENT_CHARS)",
        )


def _check_metadata(metadata: dict[str, object], s: Settings, field: str) -> None:
    """The configured metadata limits (the model has checked the content)."""
    shape = metadata_shape(metadata, field)
    if shape.depth > s.max_metadata_depth:
        raise HTTPException(
            422,
            f"{field} is nested {shape.depth} levels deep; the limit is {s.max_metadata_depth}"
            " (MAX_METADATA_DEPTH)",
        )
    if shape.keys > s.max_metadata_keys:
        raise HTTPException(
            413,
            f"{field} has {shape.keys} keys; the limit is {s.max_metadata_keys}"
            " (MAX_METADATA_KEYS)",
        )
    size = metadata_bytes(metadata)
    if size > s.max_metadata_bytes:
        raise HTTPException(
            413,
            f"{field} has {size} bytes as JSON; the limit is {s.max_metadata_bytes}"
            " (MAX_METADATA_BYTES); it is stored with every chunk",
        )


@router.post("", response_model=IngestResponse)
def ingest(body: IngestRequest, pipeline: PipelineDep) -> IngestResponse:
    """Chunk, embed and store one document (idempotent; replaces a changed document)."""
    _check_size(body.text, pipeline.settings.max_document_chars, "text")
    _check_metadata(body.metadata, pipeline.settings, "metadata")
    doc = DocumentIn(text=body.text, document_id=body.document_id, metadata=body.metadata)
    return pipeline.ingest(doc, body.collection)


@router.post("/batch", response_model=BatchIngestResponse)
def ingest_batch(body: BatchIngestRequest, pipeline: PipelineDep) -> BatchIngestResponse:
    """Bulk ingestion: one embedding call for every chunk of the batch."""
    limit = pipeline.settings.max_batch_documents
    if len(body.documents) > limit:
        raise HTTPException(
            413,
            f"batch has {len(body.documents)} documents; the limit is {limit}"
            " (MAX_BATCH_DOCUMENTS)",
        )
    for i, doc in enumerate(body.documents):
        _check_size(doc.text, pipeline.settings.max_document_chars, f"documents[{i}].text")
        _check_metadata(doc.metadata, pipeline.settings, f"documents[{i}].metadata")
    return pipeline.ingest_batch(body.documents, body.collection)
