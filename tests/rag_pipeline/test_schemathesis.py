"""Fuzz the OpenAPI schema against both stores: no input may produce a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from rag_pipeline.embeddings import LocalEmbedder
from rag_pipeline.main import create_app
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings
from rag_pipeline.stores import make_store

SETTINGS = {"api_key": None, "max_document_chars": 20_000}


def _app() -> FastAPI:
    # Built at import: schemathesis parametrises from a schema object (its fixture-based lazy
    # schemas do not work with this pytest). The embedder loads lazily and is shared with the
    # session fixture through LocalEmbedder's per-process model cache.
    s = Settings(**SETTINGS)  # type: ignore[arg-type]
    return create_app(pipeline=Pipeline(s, make_store(s)))


qdrant_app, pgvector_app = _app(), _app()


@pytest.fixture(scope="module")
def on_pgvector(pg_dsn: str, embedder: LocalEmbedder) -> Iterator[None]:
    """pgvector_app's routes use a pgvector pipeline (the session's PostgreSQL). Smaller text,
    query and batch limits than on Qdrant keep the embedding time of each example short."""
    s = Settings(  # type: ignore[arg-type]
        **{**SETTINGS, "max_document_chars": 2_000},
        max_batch_documents=8,
        max_query_chars=256,
        vector_store="pgvector",
        pgvector_dsn=pg_dsn,
    )
    placeholder = pgvector_app.state.pipeline
    with Pipeline(s, make_store(s), embedder=embedder) as pipeline:
        pgvector_app.state.pipeline = pipeline
        yield
    pgvector_app.state.pipeline = placeholder


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@schemathesis.openapi.from_asgi("/openapi.json", qdrant_app).parametrize()
@fuzz(25)
def test_no_server_errors_qdrant(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])


# Through pgvector's SQL, jsonb and COPY (where NUL and NaN used to give 500s).
@pytest.mark.slow
@schemathesis.openapi.from_asgi("/openapi.json", pgvector_app).parametrize()
@fuzz(25)
def test_no_server_errors_pgvector(case: schemathesis.Case, on_pgvector: None) -> None:
    case.call_and_validate(checks=[not_a_server_error])
