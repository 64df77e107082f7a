"""Document listing and deletion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from rag_pipeline.dependencies import PipelineDep
from rag_pipeline.models import COLLECTION_PATTERN, DeleteResponse, DocumentId, DocumentList
from rag_pipeline.routers.common import ERRORS, NOT_FOUND

router = APIRouter(prefix="/documents", tags=["documents"], responses={**ERRORS, **NOT_FOUND})

CollectionQuery = Annotated[str | None, Query(pattern=COLLECTION_PATTERN)]


@router.get("", response_model=DocumentList)
def list_documents(pipeline: PipelineDep, collection: CollectionQuery = None) -> DocumentList:
    """Every document in the collection with its content hash and chunk count."""
    name = collection or pipeline.settings.collection_name
    return DocumentList(collection=name, documents=pipeline.list_documents(name))


# ":path" so ids that look like file paths ("guides/intro.md") work.
@router.delete("/{document_id:path}", response_model=DeleteResponse)
def delete_document(
    # The rules of ingestion's document_id: an id that cannot be stored cannot be deleted,
    # and a NUL must not reach the store.
    document_id: Annotated[DocumentId, Path()],
    pipeline: PipelineDep,
    collection: CollectionQuery = None,
) -> DeleteResponse:
    """Delete all chunks of a document (0 when it does not exist)."""
    name = collection or pipeline.settings.collection_name
    deleted = pipeline.delete_document(document_id, name)
    return DeleteResponse(collection_name=name, document_id=document_id, deleted_chunks=deleted)
