"""Re-index jobs: a collection re-chunked and re-embedded from its kept originals into a new
physical collection, which then replaces the old one in one step (see Pipeline.reindex).

Jobs run in a thread each; their state is kept in this process (the latest job per
collection) and served by ``GET /collections/{name}/reindex``.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Literal

from pydantic import BaseModel, Field

JobState = Literal["running", "switching", "succeeded", "failed"]


class ReindexConflictError(RuntimeError):
    """A re-index cannot start: one is running, or originals are missing (HTTP 409)."""


class ReindexJob(BaseModel):
    job_id: str
    collection: str
    state: JobState = "running"
    documents_total: int = Field(0, description="Documents in the collection when it started")
    documents_done: int = Field(0, description="Documents re-chunked and re-embedded so far")
    chunks_written: int = 0
    started_at: float = Field(default_factory=time.time, description="Unix time")
    finished_at: float | None = None
    error: str | None = Field(None, description="Why it failed; the old collection serves on")
    chunker: dict[str, object] = Field(
        default_factory=dict, description="The chunker the new collection records"
    )


class JobRegistry:
    """The latest job of each collection; at most one running per collection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, ReindexJob] = {}
        self.done = threading.Condition(self._lock)

    def start(self, collection: str) -> ReindexJob:
        with self._lock:
            job = self._jobs.get(collection)
            if job is not None and job.state in ("running", "switching"):
                raise ReindexConflictError(
                    f"collection {collection!r} is being re-indexed (job {job.job_id}, "
                    f"{job.documents_done}/{job.documents_total} documents); follow it with "
                    f"GET /collections/{collection}/reindex"
                )
            job = self._jobs[collection] = ReindexJob(
                job_id=uuid.uuid4().hex, collection=collection
            )
            return job

    def get(self, collection: str) -> ReindexJob | None:
        with self._lock:
            job = self._jobs.get(collection)
            return job.model_copy() if job is not None else None

    def finish(self, job: ReindexJob, state: JobState, error: str | None = None) -> None:
        with self._lock:
            job.state = state
            job.error = error
            job.finished_at = time.time()
            self.done.notify_all()

    def wait(self, collection: str, timeout: float | None = None) -> ReindexJob | None:
        """The collection's latest job once it has finished (or at ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                job = self._jobs.get(collection)
                if job is None or job.state in ("succeeded", "failed"):
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self.done.wait(left)
            return job.model_copy() if job is not None else None
