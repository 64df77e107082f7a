"""Fuzz the OpenAPI schema: no input may produce a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from rag_pipeline.main import create_app
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings
from rag_pipeline.stores import make_store

# Built at import: schemathesis parametrises from a schema object. The embedder loads lazily and
# is shared with the session fixture through LocalEmbedder's per-process model cache.
_settings = Settings(api_key=None, max_document_chars=20_000)
app = create_app(pipeline=Pipeline(_settings, make_store(_settings)))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
