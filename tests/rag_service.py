"""The real RAG service (services/rag_pipeline) in a thread of the test process: uvicorn on
loopback, embedded Qdrant in a folder of its own, the session's MiniLM (tests/conftest.py's
``embedder``) shared instead of loaded again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.servers import UvicornThread

# The key of the session's shared service (``rag_service``): long enough that Ansible's no_log
# masking of it cannot hide other text in a test's output.
API_KEY = "test-api-key-0123456789"


class Service(UvicornThread):
    """A running RAG service: ``url``, its Qdrant folder and the uvicorn server (whose
    ``config.app.state.pipeline`` is the service's pipeline)."""

    def __init__(self, qdrant_path: Path, embedder: Any, api_key: str | None = API_KEY) -> None:
        from rag_pipeline.main import create_app
        from rag_pipeline.settings import Settings

        settings = Settings(
            qdrant_path=str(qdrant_path),
            embedding_backend="local",
            api_key=api_key,
            log_level="WARNING",
        )
        self.qdrant_path = qdrant_path
        super().__init__(create_app(settings, embedder=embedder), timeout=30)
