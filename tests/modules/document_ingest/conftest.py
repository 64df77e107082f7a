"""Fixtures: sample documents, a real RAG service on loopback, module runs in a child process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, run_module_process

from .ingest_support import API_KEY, Service, make_pdf


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    """docs/ with Markdown, text, HTML, PDF, a nested file and an unsupported file."""
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / "intro.md").write_text(
        "# Introduction\n\nThe aistack platform deploys Qdrant, LocalAI and a RAG service.\n"
    )
    (root / "notes.txt").write_text("Plain text notes about vector search and embeddings.\n")
    (root / "page.html").write_text(
        "<html><head><title>Ingress</title><style>p {color: red}</style></head><body>"
        "<h1>Ingress</h1><p>ingress-nginx routes traffic to the services.</p>"
        "<script>console.log('not text')</script></body></html>"
    )
    make_pdf(root / "manual.pdf", "The GPU operator enables time-slicing on one GPU.")
    (root / "guides" / "install.md").write_text("# Install\n\nRun make up to start everything.\n")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return root


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The bundled MiniLM model, loaded once per test session."""
    from ansible_collections.aistack.platform.plugins.module_utils.document_ingest.targets import (
        plain_sys_intern,
    )
    from rag_pipeline.embeddings import make_embedder
    from rag_pipeline.settings import Settings

    with plain_sys_intern():
        return make_embedder(Settings(embedding_backend="local"))


@pytest.fixture()
def start_service(embedder: Any, tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Starts the real RAG service (uvicorn, loopback, embedded Qdrant in tmp)."""
    import uvicorn

    from rag_pipeline.main import create_app
    from rag_pipeline.settings import Settings

    started: list[Service] = []

    def _start(qdrant_path: Path | None = None, api_key: str | None = API_KEY) -> Service:
        path = qdrant_path or tmp_path / f"qdrant-{len(started)}"
        settings = Settings(
            qdrant_path=str(path), embedding_backend="local", api_key=api_key, log_level="WARNING"
        )
        app = create_app(settings, embedder=embedder)
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("RAG service did not start")
            time.sleep(0.02)
        service = Service(f"http://127.0.0.1:{port}", path, server, thread)
        started.append(service)
        return service

    yield _start
    for service in started:
        service.stop()


@pytest.fixture()
def service(start_service: Callable[..., Service]) -> Service:
    return start_service()


@pytest.fixture()
def ingest() -> Callable[..., dict[str, Any]]:
    """Runs document_ingest in a child Python process as Ansible would; returns its result.

    Never in this process: Ansible's module_utils patch ``sys.intern``, after which torch (the
    service's embedder) cannot be imported here any more.
    """

    def _call(args: dict[str, Any], check: bool = False, diff: bool = True) -> dict[str, Any]:
        return run_module_process("document_ingest", args, check=check, diff=diff)

    return _call
