"""Fixtures: sample documents, the real RAG service on loopback (the session's shared one, or one
of a test's own), module runs in a child process."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_module_process

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


@pytest.fixture()
def start_service(embedder: Any, tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Starts a RAG service of the test's own (for a Qdrant folder the test prepared)."""
    started: list[Service] = []

    def _start(qdrant_path: Path | None = None, api_key: str | None = API_KEY) -> Service:
        service = Service(qdrant_path or tmp_path / f"qdrant-{len(started)}", embedder, api_key)
        started.append(service)
        return service

    yield _start
    for service in started:
        service.stop()


@pytest.fixture()
def service(rag_service: Service) -> Service:
    """The session's RAG service (tests/conftest.py). A test that writes uses a ``collection``
    of its own; test_through_ansible_cli alone writes the module's default one."""
    return rag_service


@pytest.fixture()
def collection(request: pytest.FixtureRequest) -> str:
    """A collection of this test's own in the shared service (from the test's name)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[-64:]


@pytest.fixture()
def ingest() -> Callable[..., dict[str, Any]]:
    """Runs document_ingest in a child Python process as Ansible would; returns its result.

    Never in this process: Ansible's module_utils patch ``sys.intern``, after which torch (the
    service's embedder) cannot be imported here any more.
    """

    def _call(args: dict[str, Any], check: bool = False, diff: bool = True) -> dict[str, Any]:
        return run_module_process("document_ingest", args, check=check, diff=diff)

    return _call
