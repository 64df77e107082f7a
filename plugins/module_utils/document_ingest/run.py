# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One document_ingest task: read the files, compare them with the collection, send what
changed in batches, prune, and build the module result.

``run(params, check_mode=..., diff=..., warn=...)`` returns the result, or raises
IngestFailed (the module's fail_json) or MissingLibrary.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any, NoReturn

from ansible_collections.aistack.platform.plugins.module_utils.document_ingest.plan import (
    Document,
    batches,
    diff,
    is_unchanged,
    make_document,
    prunable,
)
from ansible_collections.aistack.platform.plugins.module_utils.document_ingest.targets import (
    Target,
    TargetError,
    open_target,
    with_retries,
)
from ansible_collections.aistack.platform.plugins.module_utils.documents import (
    DocumentError,
    SourceFile,
    default_base_dir,
    discover,
    extract,
    printable,
)

DIRECT_ONLY = ("embedding_model_path", "embedding_url", "embedding_api_key")
COUNTED = ("ingested", "updated", "unchanged", "removed")
Batch = list[tuple[Document, dict[str, Any]]]


class IngestFailed(Exception):
    """The task fails with ``msg``; ``result`` is what it did (the module returns both)."""

    def __init__(self, msg: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.result = result or {}


def check_options(params: dict[str, Any], warn: Callable[[str], None]) -> None:
    """Raise IngestFailed for values the argument spec cannot express."""
    for key in ("batch_size", "max_batch_bytes"):
        if params[key] < 1:
            raise IngestFailed(f"{key} must be at least 1, got {params[key]}")
    size, overlap = params.get("chunk_size"), params.get("chunk_overlap")
    if params["retries"] < 0 or params["backoff"] < 0 or (overlap or 0) < 0 or (size or 0) < 0:
        raise IngestFailed("retries, backoff, chunk_size and chunk_overlap must not be negative")
    # chunk_size 0 or unset: the embedder's window, known once the model is loaded.
    if size and overlap is not None and overlap >= size:
        raise IngestFailed("chunk_overlap must be smaller than chunk_size")
    given = [k for k in DIRECT_ONLY if params.get(k)]
    if params.get("endpoint") and given:
        warn(
            "{} only apply with url or path; the RAG service at endpoint uses its own "
            "embedding settings".format(", ".join(given))
        )


def run(
    params: dict[str, Any],
    *,
    check_mode: bool = False,
    diff: bool = False,
    warn: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    check_options(params, warn)
    return Ingestion(params, check_mode=check_mode, diff=diff, warn=warn).run()


class Ingestion:
    """The state of one task: one entry per file (and per pruned document)."""

    def __init__(
        self,
        params: dict[str, Any],
        *,
        check_mode: bool,
        diff: bool,
        warn: Callable[[str], None],
    ) -> None:
        self.params = params
        self.check_mode = check_mode
        self.diff = diff
        self.warn = warn
        self.collection: str = params["collection"]
        self.base_dir = ""
        self.retry = {"retries": params["retries"], "backoff": params["backoff"]}
        self.started = time.perf_counter()
        self.entries: dict[str, dict[str, Any]] = {}
        self.documents: dict[str, Document] = {}
        self.unsupported: set[str] = set()
        self.existing: dict[str, dict[str, Any]] = {}
        self.confirmed: set[str] = set()  # documents whose outcome the target reported
        self.failures: list[str] = []

    def run(self) -> dict[str, Any]:
        self.read_files()
        target = self.open()
        try:
            pending = self.plan(target)
            removable = self.plan_prune()
            if not self.check_mode and (pending or removable):
                self.write(target, pending)
                self.prune(target, removable)
        finally:
            target.close()
        if self.failures:
            self.fail(self.failure_message())
        return self.result()

    # -- results --------------------------------------------------------------------------

    def count(self, status: str) -> int:
        return sum(1 for e in self.entries.values() if e.get("status") == status)

    def result(self) -> dict[str, Any]:
        files = [self.entries[k] for k in sorted(self.entries)]
        result: dict[str, Any] = {status: self.count(status) for status in COUNTED}
        result.update(
            failed_files=self.count("failed"),
            ignored=self.count("skipped"),
            chunks=sum(f.get("chunks", 0) for f in files),
            collection=self.collection,
            base_dir=self.base_dir,
            files=files,
            elapsed_s=round(time.perf_counter() - self.started, 3),
        )
        result["changed"] = bool(result["ingested"] or result["updated"] or result["removed"])
        if self.diff:
            result["diff"] = diff(self.collection, self.entries, self.existing, self.documents)
        return result

    def failure_message(self) -> str:
        """What failed, and that the rest of the run is complete (or, pending, to run again)."""
        done = ", ".join(f"{self.count(status)} {status}" for status in COUNTED)
        pending = self.count("pending")
        if pending:
            done += f"; {pending} pending, not attempted because of the failures: run again"
        if self.check_mode:
            done += "; check mode, nothing was written"
        return "{} file(s) failed, the other files were processed ({}):\n{}".format(
            self.count("failed"), done, "\n".join(self.failures)
        )

    def fail(self, msg: str) -> NoReturn:
        raise IngestFailed(msg, self.result())

    def mark(self, document_ids: list[str], status: str, error: str | None = None) -> None:
        for document_id in document_ids:
            self.entries[document_id]["status"] = status
            if error is not None:
                self.entries[document_id]["error"] = error

    # -- 1. files -------------------------------------------------------------------------

    def read_files(self) -> None:
        """Discover and extract every file. A file that cannot be used is a failed (or skipped)
        entry and the run goes on with the others; only bad input paths fail at once."""
        params = self.params
        self.base_dir = os.path.abspath(params["base_dir"] or default_base_dir(params["paths"]))
        try:
            sources, others = discover(
                params["paths"], self.base_dir, params["recursive"], params["id_prefix"]
            )
        except DocumentError as exc:
            self.fail(str(exc))
        # Skipped files are still there: their documents (if any) are not pruned.
        self.unsupported = {source.document_id for source in others}
        for source in others:
            self.entries[source.document_id] = {
                "path": printable(source.path),
                "document_id": source.document_id,
                "status": source.status,
                "error": source.reason,
            }
            if source.status == "failed":
                self.failures.append(f"{printable(source.path)}: {source.reason}")
        for source in sources:
            error = self.read_file(source)
            if error:
                self.failures.append(error)

    def read_file(self, source: SourceFile) -> str | None:
        """Extract one file into self.documents; the error, when it cannot be read."""
        entry: dict[str, Any] = {
            "path": printable(source.path),
            "document_id": source.document_id,
            "format": source.format,
        }
        self.entries[source.document_id] = entry
        try:
            extracted = extract(source)
        except DocumentError as exc:
            entry.update(status="failed", error=str(exc))
            return str(exc)
        if not extracted.text.split():
            entry.update(status="skipped", error="no text could be extracted")
            self.warn(f"{source.path}: no text could be extracted, skipped")
            return None
        doc = make_document(source, extracted, self.params["metadata"])
        entry.update(text_hash=doc.text_hash, chunks=0)
        self.documents[doc.document_id] = doc
        return None

    # -- 2. what the collection holds -------------------------------------------------------

    def open(self) -> Target:
        try:
            return open_target(self.params)
        except TargetError as exc:
            self.fail(str(exc))

    def plan(self, target: Target) -> Batch:
        """List the collection; mark unchanged files; the rest (document, payload) to send."""
        try:
            listed = with_retries(lambda: target.list_documents(self.collection), **self.retry)
        except TargetError as exc:
            self.fail(str(exc))
        self.existing = listed or {}
        pending: Batch = []
        for document_id, doc in self.documents.items():
            entry, have = self.entries[document_id], self.existing.get(document_id)
            if have is not None and is_unchanged(doc, have):
                entry["status"] = "unchanged"
                if have.get("content_hash"):
                    entry["content_hash"] = have["content_hash"]
            else:  # the new version's content_hash comes from the target
                entry["status"] = "updated" if have is not None else "ingested"
                pending.append((doc, doc.payload()))
        return pending

    def plan_prune(self) -> list[str]:
        if not self.params["prune"]:
            return []
        current = set(self.documents) | self.unsupported
        removable = prunable(self.existing, self.base_dir, current)
        for document_id in removable:
            info = self.existing[document_id]
            self.entries[document_id] = {
                "path": str((info.get("metadata") or {}).get("source_path") or ""),
                "document_id": document_id,
                "status": "removed",
                "content_hash": info.get("content_hash", ""),
                "text_hash": info.get("text_hash"),
                "chunks": 0,
            }
        if self.failures:  # a file that failed to read may be one of them: keep them all
            self.mark(removable, "pending", "not pruned: other files failed")
            return []
        return removable

    # -- 3. write -------------------------------------------------------------------------

    def write(self, target: Target, pending: Batch) -> None:
        """Send the batches; after a failure that retries did not cure, send no more."""
        if not pending:
            return
        ids = [doc.document_id for doc, _payload in pending]
        try:
            with_retries(lambda: target.check_collection(self.collection), **self.retry)
        except TargetError as exc:
            self.mark(ids, "pending")
            self.fail(str(exc))
        fatal = False
        for batch in batches(pending, self.params["batch_size"], self.params["max_batch_bytes"]):
            if fatal:
                self.mark([doc.document_id for doc, _payload in batch], "pending")
                continue
            outcome, fatal = self.send(target, batch)
            self.record(outcome)
        for document_id in ids:
            entry = self.entries[document_id]
            if document_id not in self.confirmed and entry["status"] in ("ingested", "updated"):
                entry["status"] = "pending"  # planned, never confirmed by the target

    def send(self, target: Target, batch: Batch) -> tuple[list[dict[str, Any]], bool]:
        """(per-document results, fatal). A rejected batch is sent again one by one, to name
        the file at fault; a retryable error that outlived its retries is fatal."""
        try:
            return self.ingest(target, [payload for _doc, payload in batch]), False
        except TargetError as exc:
            if exc.retryable or len(batch) == 1:
                self.failed(batch, exc)
                return [], exc.retryable
        outcome: list[dict[str, Any]] = []
        for item in batch:
            try:
                outcome.extend(self.ingest(target, [item[1]]))
            except TargetError as single:
                self.failed([item], single)
                if single.retryable:
                    return outcome, True
        return outcome, False

    def ingest(self, target: Target, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return with_retries(lambda: target.ingest(payloads, self.collection), **self.retry)

    def failed(self, batch: Batch, exc: TargetError) -> None:
        self.mark([doc.document_id for doc, _payload in batch], "failed", str(exc))
        names = ", ".join(doc.source.path for doc, _payload in batch)
        self.failures.append(f"{names}: {exc}")

    def record(self, outcome: list[dict[str, Any]]) -> None:
        """Statuses, chunks and version hashes as the target reports them."""
        for item in outcome:
            entry = self.entries.get(item["document_id"])
            if entry is None:
                continue
            entry.update(
                status={"created": "ingested"}.get(item["status"], item["status"]),
                chunks=int(item.get("chunks_created", 0)),
            )
            self.confirmed.add(item["document_id"])
            if item.get("content_hash"):
                entry["content_hash"] = item["content_hash"]

    def prune(self, target: Target, removable: list[str]) -> None:
        """Delete the prunable documents, unless a file failed."""
        if self.failures:
            self.mark(removable, "pending", "not pruned: other files failed")
            return
        for document_id in removable:
            try:
                with_retries(
                    functools.partial(target.delete, document_id, self.collection), **self.retry
                )
            except TargetError as exc:
                self.mark([document_id], "failed", str(exc))
                self.failures.append(f"{document_id} (prune): {exc}")
                return
