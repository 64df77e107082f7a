"""Collection listing and creation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from rag_pipeline.dependencies import PipelineDep
from rag_pipeline.models import (
    COLLECTION_PATTERN,
    CollectionCreated,
    CollectionInfo,
    CollectionList,
)
from rag_pipeline.routers.common import ERRORS

router = APIRouter(prefix="/collections", tags=["collections"], responses=ERRORS)


@router.get("", response_model=CollectionList)
def list_collections(pipeline: PipelineDep) -> CollectionList:
    return CollectionList(
        collections=[CollectionInfo(name=n, chunks=c) for n, c in pipeline.list_collections()]
    )


@router.put("/{name}", response_model=CollectionCreated)
def create_collection(
    name: Annotated[str, Path(pattern=COLLECTION_PATTERN)], pipeline: PipelineDep
) -> CollectionCreated:
    """Create the collection if missing (idempotent)."""
    return CollectionCreated(name=name, created=pipeline.ensure_collection(name))
