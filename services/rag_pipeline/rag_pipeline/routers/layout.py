"""The collection layout for the service's embedder and store."""

from __future__ import annotations

from fastapi import APIRouter

from rag_pipeline.dependencies import PipelineDep
from rag_pipeline.models import CollectionLayout
from rag_pipeline.routers.common import ERRORS

router = APIRouter(tags=["collections"], responses=ERRORS)


@router.get("/collection-layout", response_model=CollectionLayout, response_model_exclude_none=True)
def collection_layout(pipeline: PipelineDep) -> CollectionLayout:
    """The vectors and payload indexes a collection needs for this service's embedding model
    and vector store (what the service creates on first use; loads the embedder)."""
    return CollectionLayout(**pipeline.layout())
