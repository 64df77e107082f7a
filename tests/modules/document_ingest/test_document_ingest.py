"""aistack.platform.document_ingest: unit tests of its module_utils, then integration tests
(the module in a child process) against the real RAG service (uvicorn on loopback, embedded
Qdrant, bundled MiniLM) and straight into embedded Qdrant through rag_pipeline.embedded.

Nothing here imports ansible.module_utils.basic or the module file: that would patch
sys.intern in this process, after which torch cannot be imported."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ansible_collections.aistack.platform.plugins.module_utils import documents as du
from ansible_collections.aistack.platform.plugins.module_utils.document_ingest import plan as pl
from ansible_collections.aistack.platform.plugins.module_utils.document_ingest import (
    targets as tg,
)
from tests.conftest import REPO, run_module

from .ingest_support import API_KEY, Service, make_pdf

MARK = "aistack.platform.document_ingest"
SUPPORTED = ["guides/install.md", "intro.md", "manual.pdf", "notes.txt", "page.html"]


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {f["document_id"]: f["status"] for f in result["files"]}


def file_entry(result: dict[str, Any], document_id: str) -> dict[str, Any]:
    return next(f for f in result["files"] if f["document_id"] == document_id)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def listed(service: Service, collection: str = "documents") -> dict[str, Any]:
    response = httpx.get(
        f"{service.url}/documents",
        params={"collection": collection},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    response.raise_for_status()
    return {d["document_id"]: d for d in response.json()["documents"]}


# --------------------------------------------------------------------------- unit: files


def test_discover_files_directories_globs(docs: Path) -> None:
    files, unsupported = du.discover([str(docs)], str(docs))
    assert [f.document_id for f in files] == SUPPORTED
    assert [f.document_id for f in unsupported] == ["image.png"]
    flat, _ = du.discover([str(docs)], str(docs), recursive=False)
    assert "guides/install.md" not in [f.document_id for f in flat]
    globbed, _ = du.discover([str(docs / "**" / "*.md")], str(docs), id_prefix="kb/")
    assert [f.document_id for f in globbed] == ["kb/guides/install.md", "kb/intro.md"]
    # The default base_dir depends on the inputs, not on which files exist.
    assert du.default_base_dir([str(docs)]) == str(docs)
    assert du.default_base_dir([str(docs / "intro.md"), str(docs / "guides")]) == str(docs)
    assert du.default_base_dir([str(docs / "**" / "*.md")]) == str(docs)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("image.png", "unsupported file type '.png'"),
        ("missing.md", "no such file or directory"),
        ("*.docx", "the pattern matches no file"),
    ],
)
def test_discover_rejects_bad_paths(docs: Path, name: str, message: str) -> None:
    with pytest.raises(du.DocumentError) as info:
        du.discover([str(docs / name)], str(docs))
    assert message in str(info.value)


def test_extract_formats(docs: Path, tmp_path: Path) -> None:
    files, _ = du.discover([str(docs)], str(docs))
    by_id = {f.document_id: du.extract(f) for f in files}
    html = by_id["page.html"]
    assert html.text == "Ingress\ningress-nginx routes traffic to the services."
    assert html.metadata == {"title": "Ingress"}
    assert by_id["intro.md"].metadata == {"title": "Introduction"}
    pdf = by_id["manual.pdf"]
    assert "time-slicing on one GPU" in pdf.text
    assert pdf.metadata == {"pages": 1, "title": "Sample PDF"}

    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(du.DocumentError, match=r"latin1\.txt: not UTF-8 text"):
        du.extract(du.SourceFile(str(tmp_path / "latin1.txt"), "latin1.txt", "text"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(du.DocumentError, match=r"broken\.pdf: not a readable PDF"):
        du.extract(du.SourceFile(str(tmp_path / "broken.pdf"), "broken.pdf", "pdf"))


def make_doc(text: str = "héllo wörld", **metadata: Any) -> pl.Document:
    source = du.SourceFile("/src/docs/a.md", "a.md", "markdown")
    return pl.make_document(source, du.Extracted(text, {"title": "A"}), metadata)


def test_text_hash_matches_the_service() -> None:
    from rag_pipeline.documents import text_hash

    doc = make_doc(team="platform")
    assert doc.text_hash == pl.text_hash("héllo wörld") == text_hash("héllo wörld")
    assert doc.text_hash == sha256("héllo wörld")
    assert doc.metadata == {
        "team": "platform",
        "title": "A",
        "source_path": "/src/docs/a.md",
        "format": "markdown",
        "ingested_by": MARK,
    }
    assert doc.payload() == {"text": doc.text, "document_id": "a.md", "metadata": doc.metadata}


def test_unchanged_needs_the_same_text_hash_and_metadata() -> None:
    doc = make_doc(team="platform", tags=["a", "é"], n=1)
    stored = {"text_hash": doc.text_hash, "metadata": dict(reversed(list(doc.metadata.items())))}
    assert pl.is_unchanged(doc, stored) is True  # key order does not matter
    assert pl.is_unchanged(doc, {**stored, "text_hash": sha256("other")}) is False
    relabelled = {**stored, "metadata": {**doc.metadata, "team": "ml"}}
    assert pl.is_unchanged(doc, relabelled) is False
    # Compared as JSON values: true is not 1, a list is not its string.
    assert (
        pl.is_unchanged(make_doc(n=True), {**stored, "metadata": make_doc(n=1).metadata}) is False
    )
    assert (
        pl.is_unchanged(make_doc(t=["a"]), {**stored, "metadata": make_doc(t="['a']").metadata})
        is False
    )
    assert pl.is_unchanged(doc, {**stored, "metadata": {}}) is False


def test_same_files_from_another_checkout_are_unchanged() -> None:
    doc = make_doc(team="platform")
    moved = {**doc.metadata, "source_path": "/ci/workspace/docs/a.md"}
    assert pl.is_unchanged(doc, {"text_hash": doc.text_hash, "metadata": moved}) is True
    # ... but only when source_path is the only difference.
    assert (
        pl.is_unchanged(doc, {"text_hash": doc.text_hash, "metadata": {**moved, "x": 1}}) is False
    )
    no_path = {k: v for k, v in doc.metadata.items() if k != "source_path"}
    assert pl.is_unchanged(doc, {"text_hash": doc.text_hash, "metadata": no_path}) is False


def test_a_target_without_text_hash_decides_itself() -> None:
    """A RAG service older than 0.3.0 (or a document it has not re-written yet)."""
    doc = make_doc()
    old = {"content_hash": sha256(doc.text), "metadata": doc.metadata}
    assert pl.is_unchanged(doc, old) is None
    assert pl.is_unchanged(doc, {**old, "text_hash": None}) is None


def test_embedded_settings_are_the_services_names() -> None:
    from rag_pipeline.settings import Settings

    params = {
        "embedding_backend": "local",
        "embedding_model": "all-MiniLM-L6-v2",
        "embedding_model_path": None,
        "embedding_url": None,
        "embedding_api_key": None,
        "chunk_size": 100,
        "chunk_overlap": 10,
        "url": "https://q:6333",
        "api_key": "k",
        "path": None,
        "ca_cert": "/ca.pem",
        "validate_certs": False,
        "timeout": 60,
        "endpoint": None,
        "paths": ["/x"],
    }
    settings = tg.embedded_settings(params)
    assert settings == {
        "embedding_backend": "local",
        "embedding_model": "all-MiniLM-L6-v2",
        "chunk_size": 100,
        "chunk_overlap": 10,
        "qdrant_url": "https://q:6333",
        "qdrant_api_key": "k",
        "qdrant_ca_cert": "/ca.pem",
        "qdrant_verify_tls": False,
        "qdrant_timeout": 60,
    }
    assert set(settings) <= set(Settings.model_fields)
    assert set(tg.PIPELINE_OPTIONS) | set(tg.QDRANT_SETTINGS.values()) <= set(Settings.model_fields)


def test_plugins_use_only_the_public_rag_pipeline_api() -> None:
    imports = re.compile(r"^\s*(?:from|import)\s+(rag_pipeline[\w.]*)", re.MULTILINE)
    found = {
        (path.relative_to(REPO).as_posix(), name)
        for path in (REPO / "plugins").rglob("*.py")
        for name in imports.findall(path.read_text())
    }
    assert {name for _path, name in found} == {"rag_pipeline"}, found
    assert (
        "from rag_pipeline import embedded"
        in (REPO / "plugins/module_utils/document_ingest/targets.py").read_text()
    )


def test_module_utils_leave_sys_intern_alone() -> None:
    """Importing the module's engine must not import ansible.module_utils.basic."""
    code = (
        "import sys\n"
        "import ansible_collections.aistack.platform.plugins.module_utils.document_ingest.run\n"
        "assert 'ansible.module_utils.basic' not in sys.modules\n"
        "assert not hasattr(type(sys.intern), 'unpatched_implementation')\n"
        "assert not any(m.startswith('rag_pipeline') for m in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "collections")}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- unit: batching, retries


def test_batches_are_bounded_by_count_and_bytes() -> None:
    def item(n: int, size: int) -> tuple[Any, dict[str, Any]]:
        return (n, {"text": "x" * size, "document_id": str(n), "metadata": {}})

    items = [item(i, 10) for i in range(5)]
    assert [len(b) for b in pl.batches(items, 2, 10_000)] == [2, 2, 1]
    big = [item(0, 100), item(1, 100), item(2, 5000), item(3, 100)]
    assert [[i for i, _d in b] for b in pl.batches(big, 10, 400)] == [[0, 1], [2], [3]]


def test_retries_back_off_exponentially_then_give_up() -> None:
    delays: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise tg.TargetError("busy", retryable=True)
        return "ok"

    assert tg.with_retries(flaky, retries=3, backoff=0.5, sleep=delays.append) == "ok"
    assert delays == [0.5, 1.0]

    delays.clear()
    with pytest.raises(tg.TargetError, match="down"):
        tg.with_retries(
            lambda: (_ for _ in ()).throw(tg.TargetError("down", retryable=True)),
            retries=2,
            backoff=1,
            sleep=delays.append,
        )
    assert delays == [1, 2]
    with pytest.raises(tg.TargetError, match="bad"):
        tg.with_retries(
            lambda: (_ for _ in ()).throw(tg.TargetError("bad")), 5, 1, sleep=delays.append
        )
    assert delays == [1, 2]


def test_service_target_retries_429_and_5xx(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"detail": "slow down"}),
        httpx.Response(503, json={"detail": "vector store unavailable"}),
        httpx.Response(200, json={"results": [{"document_id": "a", "status": "created"}]}),
    ]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return answers.pop(0)

    target = tg.ServiceTarget(
        {"endpoint": "http://rag.test", "api_key": "s3cret", "timeout": 5, "validate_certs": True}
    )
    target.client = httpx.Client(base_url="http://rag.test", transport=httpx.MockTransport(handler))
    target.client.headers["Authorization"] = "Bearer s3cret"
    monkeypatch.setattr(tg.time, "sleep", lambda _s: None)
    result = tg.with_retries(lambda: target.ingest([{"text": "t"}], "c"), retries=3, backoff=0)
    assert result == [{"document_id": "a", "status": "created"}]
    assert seen == ["Bearer s3cret"] * 3


# --------------------------------------------------------------------------- the RAG service


def test_service_ingest_idempotent_update_prune(
    ingest: Any, docs: Path, service: Service, collection: str
) -> None:
    args = {"endpoint": service.url, "api_key": API_KEY, "paths": [str(docs)], "prune": True}
    args["collection"] = collection
    first = ingest(args)
    assert first["changed"] is True, first
    assert (first["ingested"], first["updated"], first["unchanged"]) == (5, 0, 0)
    assert first["ignored"] == 1 and first["failed_files"] == 0
    assert first["chunks"] == 5
    assert statuses(first)["image.png"] == "skipped"
    assert first["diff"]["before"] == {}
    assert sorted(first["diff"]["after"]) == SUPPORTED
    stored = listed(service, collection)
    assert sorted(stored) == SUPPORTED
    meta = stored["page.html"]["metadata"]
    assert meta["ingested_by"] == MARK
    assert meta["source_path"] == str(docs / "page.html")
    assert meta["title"] == "Ingress" and meta["format"] == "html"
    # The module's text hash is the service's; the version hash is the one the service returned.
    page = file_entry(first, "page.html")
    assert page["text_hash"] == stored["page.html"]["text_hash"]
    assert page["text_hash"] == sha256("Ingress\ningress-nginx routes traffic to the services.")
    assert page["content_hash"] == stored["page.html"]["content_hash"] != page["text_hash"]
    assert first["diff"]["after"]["page.html"] == {"text_hash": page["text_hash"], "metadata": meta}

    second = ingest(args)
    assert second["changed"] is False, second
    assert second["unchanged"] == 5 and second["chunks"] == 0
    assert "diff" not in second or second["diff"] == {
        "before": {},
        "after": {},
        "before_header": f"{collection} (document_id: text_hash, metadata)",
        "after_header": f"{collection} (document_id: text_hash, metadata)",
    }
    # Unchanged files report the version hash the collection listed.
    assert file_entry(second, "intro.md")["content_hash"] == stored["intro.md"]["content_hash"]

    # Modify one file, delete another: check mode reports, changes nothing.
    (docs / "intro.md").write_text("# Introduction\n\nNow with Longhorn storage too.\n")
    old_hash = stored["intro.md"]["content_hash"]
    (docs / "notes.txt").unlink()
    planned = ingest(args, check=True)
    assert planned["changed"] is True
    assert statuses(planned)["intro.md"] == "updated"
    assert statuses(planned)["notes.txt"] == "removed"
    assert planned["diff"]["before"] == {
        name: {"text_hash": stored[name]["text_hash"], "metadata": stored[name]["metadata"]}
        for name in ("intro.md", "notes.txt")
    }
    assert planned["diff"]["after"] == {
        "intro.md": {
            "text_hash": sha256("# Introduction\n\nNow with Longhorn storage too."),
            "metadata": stored["intro.md"]["metadata"],
        }
    }
    assert "content_hash" not in file_entry(planned, "intro.md")  # not known before sending
    assert listed(service, collection)["intro.md"]["content_hash"] == old_hash
    assert "notes.txt" in listed(service, collection)

    third = ingest(args)
    assert (third["updated"], third["removed"], third["unchanged"]) == (1, 1, 3), third
    now = listed(service, collection)
    assert "notes.txt" not in now
    assert now["intro.md"]["text_hash"] == sha256(
        "# Introduction\n\nNow with Longhorn storage too."
    )
    assert now["intro.md"]["content_hash"] == file_entry(third, "intro.md")["content_hash"]
    assert now["intro.md"]["content_hash"] != old_hash
    assert ingest(args)["changed"] is False

    # A metadata-only change is a new version of every document it touches.
    relabelled = ingest({**args, "metadata": {"team": "platform"}})
    assert (relabelled["updated"], relabelled["unchanged"]) == (4, 0), relabelled
    assert all(d["metadata"]["team"] == "platform" for d in listed(service, collection).values())
    assert ingest({**args, "metadata": {"team": "platform"}})["changed"] is False

    # The same files in another checkout (CI workspace): only source_path differs - no change.
    moved = docs.parent / "another-checkout"
    shutil.copytree(docs, moved)
    elsewhere = ingest({**args, "paths": [str(moved)], "metadata": {"team": "platform"}})
    assert elsewhere["changed"] is False and elsewhere["unchanged"] == 4, elsewhere


def test_service_without_text_hash_decides(
    ingest: Any, docs: Path, service: Service, collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that lists no text_hash (older than 0.3.0): documents are sent, and the
    status is the service's (unchanged versions are left alone)."""
    args = {"endpoint": service.url, "api_key": API_KEY, "paths": [str(docs)]}
    args["collection"] = collection
    assert ingest(args)["ingested"] == 5
    pipeline = service.server.config.app.state.pipeline
    real = pipeline.list_documents
    monkeypatch.setattr(
        pipeline,
        "list_documents",
        lambda name=None: [d.model_copy(update={"text_hash": None}) for d in real(name)],
    )
    stored = listed(service, collection).values()
    assert "text_hash" not in {k for d in stored for k, v in d.items() if v}
    planned = ingest(args, check=True)  # cannot tell without sending: would send all
    assert (planned["updated"], planned["changed"]) == (5, True)
    again = ingest(args)
    assert again["changed"] is False and again["unchanged"] == 5, again
    assert again["chunks"] == 0
    assert all(f["content_hash"] for f in again["files"] if f["status"] == "unchanged")
    assert again["diff"]["before"] == again["diff"]["after"] == {}


def test_service_prune_only_touches_own_documents(
    ingest: Any, docs: Path, service: Service, collection: str
) -> None:
    foreign = httpx.post(
        f"{service.url}/ingest/batch",
        json={
            "documents": [{"text": "added by someone else", "document_id": "other"}],
            "collection": collection,
        },
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    foreign.raise_for_status()
    args = {"endpoint": service.url, "api_key": API_KEY, "paths": [str(docs)], "prune": True}
    args["collection"] = collection
    ingest(args)
    (docs / "page.html").unlink()
    result = ingest(args)
    assert result["removed"] == 1
    assert "other" in listed(service, collection)
    assert "page.html" not in listed(service, collection)


def test_service_prune_nested_file(
    ingest: Any, docs: Path, service: Service, collection: str
) -> None:
    args = {"endpoint": service.url, "api_key": API_KEY, "paths": [str(docs)], "prune": True}
    args["collection"] = collection
    ingest(args)
    shutil.rmtree(docs / "guides")
    result = ingest(args)
    assert result["removed"] == 1, result.get("msg")


def test_service_errors_are_clear(ingest: Any, docs: Path, service: Service) -> None:
    base = {"endpoint": service.url, "paths": [str(docs)], "retries": 0}
    wrong_key = ingest({**base, "api_key": "wrong-key-0000"})
    assert wrong_key["failed"] is True
    assert "refused the request (HTTP 401)" in wrong_key["msg"]
    assert "check api_key" in wrong_key["msg"]

    unreachable = ingest({**base, "endpoint": "http://127.0.0.1:9", "backoff": 0})
    assert "the RAG service at http://127.0.0.1:9 is unreachable" in unreachable["msg"]

    bad_name = ingest({**base, "api_key": API_KEY, "collection": "no spaces allowed"})
    assert "HTTP 422" in bad_name["msg"]


def test_service_mismatched_vector_size(
    ingest: Any, docs: Path, start_service: Any, tmp_path: Path
) -> None:
    from qdrant_client import QdrantClient, models

    store = tmp_path / "mismatch"
    client = QdrantClient(path=str(store))
    client.create_collection(
        "small",
        vectors_config={"dense": models.VectorParams(size=8, distance="Cosine")},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier="idf")},
    )
    client.close()
    # Straight into Qdrant: checked before anything is embedded or written.
    direct = ingest({"path": str(store), "collection": "small", "paths": [str(docs)]})
    assert direct["failed"] is True
    assert "stores 'dense' vectors of size 8, but the embedding model produces 384" in direct["msg"]
    assert "create it with the layout" in direct["msg"] and str(store) in direct["msg"]
    assert statuses(direct)["intro.md"] == "pending"
    # Through the service (which holds the storage now): its error, named and explained.
    service = start_service(store)
    result = ingest(
        {
            "endpoint": service.url,
            "api_key": API_KEY,
            "collection": "small",
            "paths": [str(docs / "intro.md")],
            "retries": 0,
        }
    )
    assert result["failed"] is True
    assert "intro.md" in result["msg"]
    # The service answers 409 naming the mismatch (nothing is written).
    assert "stores 'dense' vectors of size 8, but the embedding model produces 384" in result["msg"]
    assert statuses(result)["intro.md"] == "failed"


def test_through_ansible_cli(docs: Path, service: Service) -> None:
    args = {"endpoint": service.url, "api_key": API_KEY, "paths": [str(docs)]}
    first = run_module("aistack.platform.document_ingest", args, diff=True)
    assert first["changed"] is True, first
    assert first["ingested"] == 5
    assert first["invocation"]["module_args"]["api_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    second = run_module("aistack.platform.document_ingest", args)
    assert second["changed"] is False and second["unchanged"] == 5, second
    # The module's default collection (the only test of the shared service that writes it).
    assert sorted(listed(service, "documents")) == SUPPORTED


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"batch_size": "many"}, "batch_size"),
        ({"paths": "PATH", "prune": "perhaps"}, "prune"),
        ({"paths": ["MISSING"]}, "no such file or directory"),
        ({"paths": ["PNG"]}, "unsupported file type '.png'"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"chunk_size": 100, "chunk_overlap": 600}, "chunk_overlap must be smaller than"),
        ({"url": "http://q:6333"}, "mutually exclusive: endpoint|url|path"),
    ],
)
def test_bad_input(ingest: Any, docs: Path, args: dict[str, Any], message: str) -> None:
    replace = {"PATH": str(docs), "MISSING": str(docs / "nope.md"), "PNG": str(docs / "image.png")}
    full = {"endpoint": "http://127.0.0.1:9", "paths": [str(docs)], **args}
    if isinstance(full["paths"], list):
        full["paths"] = [replace.get(p, p) for p in full["paths"]]
    else:
        full["paths"] = replace.get(full["paths"], full["paths"])
    result = ingest(full)
    assert result["failed"] is True
    assert message in result["msg"]


def test_unreadable_file_is_a_failed_file(ingest: Any, docs: Path) -> None:
    """An unreadable file fails alone (the run goes on; see test_document_ingest_files.py)."""
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    result = ingest({"endpoint": "http://127.0.0.1:9", "paths": [str(docs)], "retries": 0})
    assert result["failed"] is True
    assert "is unreachable" in result["msg"]  # the target is still asked for the others
    broken = file_entry(result, "broken.pdf")
    assert broken["status"] == "failed"
    assert broken["error"].startswith(f"{docs}/broken.pdf: not a readable PDF")


# --------------------------------------------------------------------------- straight into Qdrant


def test_direct_embedded_qdrant(ingest: Any, docs: Path, tmp_path: Path, embedder: Any) -> None:
    store = tmp_path / "qdrant"
    args = {"path": str(store), "paths": [str(docs)], "prune": True, "collection": "kb"}
    planned = ingest(args, check=True)
    assert planned["changed"] is True and planned["ingested"] == 5
    assert not store.exists() or not any(store.rglob("storage.sqlite"))

    first = ingest(args)
    assert first["changed"] is True and first["ingested"] == 5, first.get("msg")
    assert first["chunks"] == 5
    assert ingest(args)["changed"] is False

    shutil.rmtree(docs / "guides")
    make_pdf(docs / "manual.pdf", "Updated manual text about MIG partitions.")
    third = ingest(args)
    assert statuses(third)["guides/install.md"] == "removed"
    assert statuses(third)["manual.pdf"] == "updated"

    # The service reads what the module wrote (same chunks, same payload layout).
    from rag_pipeline.models import QueryRequest
    from rag_pipeline.pipeline import Pipeline
    from rag_pipeline.settings import Settings

    settings = Settings(qdrant_path=str(store), embedding_backend="local")
    with Pipeline.from_settings(settings, embedder=embedder) as pipeline:
        ids = {d.document_id for d in pipeline.list_documents("kb")}
        assert ids == {"intro.md", "manual.pdf", "notes.txt", "page.html"}
        answer = pipeline.query(
            QueryRequest(query="MIG partitions", collection="kb", generate=False, top_n=1)
        )
        assert answer.sources[0].document_id == "manual.pdf"


def test_direct_needs_free_storage(ingest: Any, docs: Path, service: Service) -> None:
    result = ingest({"path": str(service.qdrant_path), "paths": [str(docs)]})
    assert result["failed"] is True
    assert "ingest through its endpoint instead" in result["msg"]
    assert os.path.isdir(service.qdrant_path)
    assert json.dumps(result).count(str(service.qdrant_path)) >= 1


def test_direct_through_ansible_cli(docs: Path, tmp_path: Path) -> None:
    """A real module process: loads the model after ansible-core's sys.intern patch."""
    args = {"path": str(tmp_path / "qdrant"), "paths": [str(docs / "intro.md")]}
    first = run_module("aistack.platform.document_ingest", args)
    assert first["changed"] is True and first["ingested"] == 1, first
    second = run_module("aistack.platform.document_ingest", args)
    assert second["changed"] is False and second["unchanged"] == 1, second


def test_ingest_playbook(docs: Path, service: Service) -> None:
    from tests.conftest import run_playbook

    extra = json.dumps(
        {
            "aistack_rag_endpoint": service.url,
            "aistack_rag_api_key": API_KEY,
            "aistack_rag_collection": "handbook",
            "aistack_ingest_paths": [str(docs)],
            "aistack_ingest_prune": True,
        }
    )
    first = run_playbook("playbooks/ingest.yml", "-e", extra)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "5 ingested, 0 updated" in first.stdout
    second = run_playbook("playbooks/ingest.yml", "-e", extra)
    assert "0 ingested, 0 updated, 5 unchanged" in second.stdout, second.stdout
    assert "changed=0" in second.stdout
    assert sorted(listed(service, "handbook")) == SUPPORTED
