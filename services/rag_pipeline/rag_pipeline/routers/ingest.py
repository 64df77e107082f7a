"""Ingestion endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from rag_pipeline.dependencies import PipelineDep
from rag_pipeline.limits import LimitExceededError, check_document
from rag_pipeline.models import (
    BatchIngestRequest,
    BatchIngestResponse,
    DocumentIn,
    IngestRequest,
    IngestResponse,
)
from rag_pipeline.routers.common import ERRORS, TOO_LARGE
from rag_pipeline.settings import Settings

router = APIRouter(prefix="/ingest", tags=["ingest"], responses={**ERRORS, **TOO_LARGE})


def _check(text: str, metadata: dict[str, Any], settings: Settings, prefix: str = "") -> None:
    try:
        check_document(text, metadata, settings, prefix)
    except LimitExceededError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.post("", response_model=IngestResponse)
def ingest(body: IngestRequest, pipeline: PipelineDep) -> IngestResponse:
    """Chunk, embed and store one document (idempotent; replaces a changed document)."""
    _check(body.text, body.metadata, pipeline.settings)
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
        _check(doc.text, doc.metadata, pipeline.settings, f"documents[{i}].")
    return pipeline.ingest_batch(body.documents, body.collection)
