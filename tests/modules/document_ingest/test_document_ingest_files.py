"""document_ingest: files that cannot be read are per-file results, never a traceback or a hang.

Symbolic link loops, dangling links, files removed while the task runs, names that are not
UTF-8 and unreadable content fail only their own file; FIFOs, sockets and devices are skipped
without being opened. The run goes on with the other files and fails at the end.

Nothing here imports ansible.module_utils.basic (see test_document_ingest.py)."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from ansible_collections.aistack.platform.plugins.module_utils import documents as du
from ansible_collections.aistack.platform.plugins.module_utils.document_ingest import run as rn
from tests.conftest import run_module_process

from .ingest_support import API_KEY, Service

T = TypeVar("T")
NON_UTF8 = b"caf\xe9.md"  # a Latin-1 file name


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()`` in a daemon thread; fails the test (instead of hanging) after ``seconds``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds}s (blocked on a FIFO?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def make_bad(root: Path, kind: str) -> str:
    """One unusable entry of ``kind`` in ``root``; returns its document ID (as reported)."""
    if kind == "symlink-loop":
        (root / "loop.md").symlink_to("loop.md")
        return "loop.md"
    if kind == "dangling-link":
        (root / "dangling.md").symlink_to("nowhere.md")
        return "dangling.md"
    if kind == "non-utf8-name":
        with open(os.path.join(os.fsencode(root), NON_UTF8), "wb") as handle:
            handle.write(b"bonjour")
        return "caf\\xe9.md"
    if kind == "fifo":
        os.mkfifo(root / "pipe.md")
        return "pipe.md"
    raise AssertionError(kind)


EXPECTED = {
    "symlink-loop": ("failed", "symbolic link loop (too many levels of symbolic links)"),
    "dangling-link": ("failed", "dangling symbolic link (its target nowhere.md does not exist)"),
    "non-utf8-name": ("failed", "the file name is not valid UTF-8; rename it"),
    "fifo": ("skipped", "not a regular file (FIFO)"),
}


def ingestion(**params: Any) -> rn.Ingestion:
    defaults = {"collection": "documents", "retries": 0, "backoff": 0, "metadata": {}}
    return rn.Ingestion({**defaults, **params}, check_mode=False, diff=False, warn=print)


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.md").write_text("# Good\n\nA readable Markdown file.\n")
    return root


# --------------------------------------------------------------------------- unit


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_unusable_file_is_a_per_file_result(good: Path, kind: str) -> None:
    document_id = make_bad(good, kind)
    run = ingestion(paths=[str(good)], base_dir=None, recursive=True, id_prefix="")
    within(10, run.read_files)  # used to raise OSError / UnicodeEncodeError, or block (FIFO)
    status, reason = EXPECTED[kind]
    entry = run.entries[document_id]
    assert (entry["status"], entry["error"]) == (status, reason)
    assert entry["path"] == str(good) + "/" + document_id
    assert entry["path"].encode("utf-8")  # printable: no surrogates left
    assert sorted(run.documents) == ["good.md"]  # the others are read
    assert run.failures == ([f"{entry['path']}: {reason}"] if status == "failed" else [])


def test_socket_is_skipped_unopened(tmp_path: Path) -> None:
    root = Path("/tmp") / f"di-sock-{os.getpid()}"  # AF_UNIX paths are short
    root.mkdir()
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(root / "s.md"))
            _, others = du.discover([str(root)], str(root))
        skipped = [(o.status, o.reason) for o in others]
        assert skipped == [("skipped", "not a regular file (socket)")]
    finally:
        (root / "s.md").unlink(missing_ok=True)
        root.rmdir()


def test_file_removed_or_replaced_after_discovery(good: Path) -> None:
    """Between listing and reading, one file is deleted and another replaced by a FIFO."""
    (good / "gone.md").write_text("soon removed")
    (good / "swapped.md").write_text("soon a FIFO")
    run = ingestion(metadata={})
    sources, _ = du.discover([str(good)], str(good))
    assert [s.document_id for s in sources] == ["gone.md", "good.md", "swapped.md"]
    (good / "gone.md").unlink()
    (good / "swapped.md").unlink()
    os.mkfifo(good / "swapped.md")
    errors = within(10, lambda: [run.read_file(source) for source in sources])
    assert errors[1] is None and "good.md" in run.documents
    assert run.entries["gone.md"]["status"] == "failed"
    assert errors[0] == f"{good}/gone.md: the file no longer exists (removed while the task ran)"
    assert run.entries["swapped.md"]["status"] == "failed"
    assert errors[2] == f"{good}/swapped.md: not a regular file (FIFO)"


def test_explicit_paths_name_what_they_are(good: Path) -> None:
    """A path given in paths that is no file fails the task at once, saying what it is."""
    make_bad(good, "fifo")
    make_bad(good, "dangling-link")
    for name, message in [
        ("pipe.md", "not a regular file (FIFO)"),
        ("dangling.md", "dangling symbolic link"),
    ]:
        with pytest.raises(du.DocumentError, match=re.escape(message)):
            within(10, lambda name=name: du.discover([str(good / name)], str(good)))


# --------------------------------------------------------------------------- the module


def listed(service: Service, collection: str) -> dict[str, Any]:
    response = httpx.get(
        f"{service.url}/documents",
        params={"collection": collection},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    response.raise_for_status()
    return {d["document_id"]: d for d in response.json()["documents"]}


def test_module_ingests_the_rest_and_fails_at_the_end(
    good: Path, service: Service, collection: str
) -> None:
    args = {"endpoint": service.url, "api_key": API_KEY, "paths": [str(good)], "prune": True}
    args["collection"] = collection
    (good / "old.md").write_text("# Old\n\nIngested once, then deleted.\n")
    first = run_module_process("document_ingest", args, timeout=120)
    assert first["ingested"] == 2 and not first.get("failed"), first
    (good / "old.md").unlink()
    (good / "new.txt").write_text("A new plain text file about embeddings.\n")
    (good / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    bad = {kind: make_bad(good, kind) for kind in EXPECTED}

    # Check mode first: the same outcome, nothing written. A timeout, not a hang, on a FIFO.
    planned = run_module_process("document_ingest", args, check=True, diff=True, timeout=120)
    result = run_module_process("document_ingest", args, diff=True, timeout=120)
    for outcome in (planned, result):
        assert outcome["failed"] is True, outcome
        by_id = {f["document_id"]: f for f in outcome["files"]}
        for kind, document_id in bad.items():
            assert (by_id[document_id]["status"], by_id[document_id]["error"]) == EXPECTED[kind]
        assert by_id["broken.pdf"]["status"] == "failed"
        assert by_id["good.md"]["status"] == "unchanged"
        assert by_id["new.txt"]["status"] == "ingested"
        # Pruning waits until every file reads: old.md might be one that failed.
        assert by_id["old.md"]["status"] == "pending"
        assert outcome["failed_files"] == 4 and outcome["ignored"] == 1
        assert outcome["ingested"] == 1 and outcome["changed"] is True
        assert outcome["msg"].startswith("4 file(s) failed, the other files were processed")
        for name in ("loop.md", "dangling.md", "caf\\xe9.md", "broken.pdf"):
            assert f"{good}/{name}: " in outcome["msg"]
        assert sorted(outcome["diff"]["after"]) == ["new.txt"]
    assert "check mode" in planned["msg"]
    stored = listed(service, collection)
    assert sorted(stored) == ["good.md", "new.txt", "old.md"]
