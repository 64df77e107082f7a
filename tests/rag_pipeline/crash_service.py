"""The RAG service (settings from the environment) on loopback port argv[1], which SIGKILLs
itself right before its CRASH_AT-th store write of an ingest batch: a kill -9 at a chosen
point of the write path. Counted writes: embedded Qdrant's per-point SQLite writes and
deletes, or each SQL statement sent to PostgreSQL."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from rag_pipeline.main import create_app
from rag_pipeline.pipeline import Pipeline

CRASH_AT = int(os.environ.get("CRASH_AT", "0"))
state = {"armed": False, "writes": 0}


def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if state["armed"]:
            state["writes"] += 1
            if state["writes"] == CRASH_AT:
                os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)

    return wrapper


ingest_batch = Pipeline.ingest_batch


def armed_ingest_batch(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
    state["armed"] = True  # count the batch's writes only, not start-up
    return ingest_batch(self, *args, **kwargs)


Pipeline.ingest_batch = armed_ingest_batch  # type: ignore[method-assign]
if os.environ.get("VECTOR_STORE") == "pgvector":
    import psycopg

    psycopg.Cursor.execute = counted(psycopg.Cursor.execute)  # type: ignore[method-assign]
    psycopg.Cursor.executemany = counted(psycopg.Cursor.executemany)  # type: ignore[method-assign]
else:
    from qdrant_client.local.persistence import CollectionPersistence

    CollectionPersistence.persist = counted(CollectionPersistence.persist)  # type: ignore[method-assign]
    CollectionPersistence.delete = counted(CollectionPersistence.delete)  # type: ignore[method-assign]

if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
