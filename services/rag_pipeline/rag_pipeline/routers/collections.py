"""Collection listing and creation."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException, Path, Query, Response

from rag_pipeline.dependencies import PipelineDep
from rag_pipeline.models import (
    COLLECTION_PATTERN,
    CollectionCreated,
    CollectionInfo,
    CollectionList,
)
from rag_pipeline.reindex import ReindexJob
from rag_pipeline.routers.common import CONFLICT, ERRORS, NOT_FOUND

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


CollectionPath = Annotated[str, Path(pattern=COLLECTION_PATTERN)]


@router.post(
    "/{name}/reindex",
    response_model=ReindexJob,
    status_code=202,
    responses={**NOT_FOUND, **CONFLICT, 200: {"model": ReindexJob}},
)
async def reindex(
    name: CollectionPath,
    pipeline: PipelineDep,
    response: Response,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=3600,
            description="Seconds to wait for the job to finish before answering (0: answer "
            "at once, 202); a finished job answers 200",
        ),
    ] = 0,
) -> ReindexJob:
    """Re-chunk and re-embed the collection from its kept originals with the current
    embedder, chunker and tokenizer, into a new physical collection that then replaces the old
    one in one step. Queries (and writes) keep using the old one meanwhile; a failure leaves it
    serving, untouched. 202 with the job; follow it with GET. 409: a re-index of the collection
    is running, or documents ingested before 0.5.0 have no kept original."""
    job = await anyio.to_thread.run_sync(pipeline.start_reindex, name)
    response.headers["Location"] = f"/collections/{name}/reindex"
    if wait:
        done = await anyio.to_thread.run_sync(pipeline.reindex_jobs.wait, name, wait)
        if done is not None and done.job_id == job.job_id:
            job = done
    if job.state in ("succeeded", "failed"):
        response.status_code = 200
    return job


@router.get("/{name}/reindex", response_model=ReindexJob, responses=NOT_FOUND)
def reindex_status(name: CollectionPath, pipeline: PipelineDep) -> ReindexJob:
    """The collection's latest re-index job in this process: state (running, switching,
    succeeded, failed), documents done of total, chunks written, the error of a failed one."""
    job = pipeline.reindex_jobs.get(name)
    if job is None:
        raise HTTPException(404, f"no re-index of collection {name!r} in this process")
    return job
