#!/usr/bin/python
# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: document_ingest
short_description: Ingest text, Markdown, HTML and PDF files into the RAG pipeline
version_added: "0.1.0"
description:
  - Reads files (O(paths) - files, directories, globs), extracts their text (text and
    Markdown as they are, HTML through beautifulsoup4, PDF through pypdf) and ingests each
    file as one document into a collection of the aistack RAG pipeline.
  - Two targets. With O(endpoint) the documents go to the RAG service's
    C(POST /ingest/batch). With O(url) or O(path) they go straight into Qdrant, chunked and
    embedded in-process by the service's own code (the C(rag_pipeline) Python package), so
    both targets store exactly the same chunks and vectors.
  - Each document's C(document_id) is the file's path relative to O(base_dir) (plus
    O(id_prefix)), so it is stable across runs and a changed file replaces its document.
  - Idempotent by content hash. The SHA-256 of each file's extracted text and the metadata
    stored with it (O(metadata), the title found in the file, C(source_path), C(format)) is
    compared with the hash the collection holds for that document; unchanged files are not
    sent at all, and a run where nothing changed reports C(changed=false). A change of
    O(metadata) alone updates (re-embeds) the documents concerned; the same files read from
    another location (another checkout or CI workspace) differ only in C(source_path) and are
    left unchanged.
  - Every document carries C(metadata.source_path) and
    C(metadata.ingested_by=aistack.platform.document_ingest); O(prune) only ever removes
    documents with that mark.
author:
  - aistack.platform contributors (@aistack-platform)
extends_documentation_fragment:
  - aistack.platform.qdrant
options:
  paths:
    description:
      - Files, directories and glob patterns (C(*), C(?), C([..]); C(**) with
        O(recursive=true)) to ingest.
      - Files found in directories or by a wildcard whose type is not supported are skipped
        (listed in RV(files) with status C(skipped)); a file named explicitly with an
        unsupported type fails the task. Hidden files and directories are ignored.
      - Supported types by extension are C(.txt), C(.text), C(.md), C(.markdown), C(.html),
        C(.htm) and C(.pdf).
    type: list
    elements: path
    required: true
  recursive:
    description: Descend into subdirectories of directories given in O(paths).
    type: bool
    default: true
  base_dir:
    description:
      - Directory the document IDs are relative to.
      - Defaults to the common root of O(paths) (a directory itself, a file's directory, a
        glob's fixed prefix), which does not depend on which files exist, so IDs stay stable
        when files are added or removed.
    type: path
  id_prefix:
    description: String put in front of every C(document_id), for example C(handbook/).
    type: str
    default: ""
  metadata:
    description: Extra metadata stored with every document (merged under the module's keys).
    type: dict
    default: {}
  collection:
    description: Collection to ingest into (the RAG service's collection name).
    type: str
    default: documents
  endpoint:
    description:
      - Base URL of the RAG pipeline service, for example C(http://127.0.0.1:8000) or
        C(https://rag.example.com). The documents are sent to C(POST /ingest/batch).
      - With O(endpoint), O(api_key) is the service's API key (sent as
        an C(Authorization) bearer token), and O(timeout), O(validate_certs) and O(ca_cert) apply
        to the service.
      - Mutually exclusive with O(url) and O(path); exactly one of the three is required.
    type: str
  prune:
    description:
      - Remove documents that this module ingested (marked with C(metadata.ingested_by))
        from under O(base_dir) whose file is no longer among the files of this run, for
        example because it was deleted.
      - Nothing is removed when any file of the run failed.
    type: bool
    default: false
  batch_size:
    description: Maximum number of documents per ingestion request.
    type: int
    default: 16
  max_batch_bytes:
    description:
      - Maximum size of one ingestion request's documents (JSON-encoded, in bytes). A single
        document larger than this is sent on its own.
    type: int
    default: 4000000
  retries:
    description:
      - How many times a request is retried after a connection error, a timeout, HTTP 429 or
        HTTP 5xx (and, with O(url) or O(path), when Qdrant is unavailable).
    type: int
    default: 3
  backoff:
    description:
      - Seconds before the first retry; each further retry waits twice as long. A
        C(Retry-After) header of the service (up to 60 seconds) takes precedence.
    type: float
    default: 1.0
  embedding_backend:
    description:
      - With O(url) or O(path) - V(local) embeds in-process with sentence-transformers (by
        default the bundled all-MiniLM-L6-v2 model, 384 dimensions); V(openai) calls an
        OpenAI-compatible C(/v1/embeddings) at O(embedding_url).
      - Must match the backend and model the RAG service queries with.
    type: str
    choices: [local, openai]
    default: local
  embedding_model:
    description: Embedding model name for V(openai) (with O(url) or O(path)).
    type: str
    default: all-MiniLM-L6-v2
  embedding_model_path:
    description: Folder of a sentence-transformers model for V(local) (default the bundled MiniLM).
    type: path
  embedding_url:
    description: Base URL of the OpenAI-compatible embeddings API for V(openai), ending in C(/v1).
    type: str
  embedding_api_key:
    description: API key of the embeddings API for V(openai).
    type: str
  chunk_size:
    description: Words per chunk (with O(url) or O(path); the service uses its own setting).
    type: int
    default: 512
  chunk_overlap:
    description: Words shared by consecutive chunks (with O(url) or O(path)).
    type: int
    default: 50
notes:
  - Supports check mode and diff mode. In check mode the collection is read (to know what is
    unchanged) but nothing is written or embedded; RV(files) then says what would happen.
  - A failed request is retried; when it still fails, the task fails naming the files of
    that request. Documents ingested before stay complete and consistent (the service
    replaces a document atomically); running the task again finishes the job.
  - With O(path), embedded Qdrant is locked by this task while it runs, so the RAG service
    must not have the same storage open - use O(endpoint) while the service runs.
  - With O(url) or O(path) the Python package C(rag_pipeline) (the RAG service's code, with
    its C(local) extra for O(embedding_backend=local)) must be installed where the module
    runs. With O(endpoint) only C(httpx) is needed.
requirements:
  - httpx (with O(endpoint))
  - rag_pipeline (with O(url) or O(path))
  - beautifulsoup4 (for HTML files)
  - pypdf (for PDF files)
seealso:
  - module: aistack.platform.qdrant_collection
"""

EXAMPLES = r"""
- name: Ingest the handbook into the RAG service
  aistack.platform.document_ingest:
    endpoint: http://rag-pipeline.ai-stack.svc:8000
    api_key: "{{ vault_rag_api_key }}"
    collection: documents
    paths:
      - /srv/handbook
      - /srv/policies/*.pdf
    base_dir: /srv
    prune: true

- name: Straight into embedded Qdrant with the bundled MiniLM model (no service running)
  aistack.platform.document_ingest:
    path: /var/lib/aistack/qdrant
    collection: documents
    paths: [docs/]
    metadata: {team: platform}

- name: Straight into a Qdrant server, embeddings from LocalAI
  aistack.platform.document_ingest:
    url: https://qdrant.example.com:6333
    api_key: "{{ vault_qdrant_api_key }}"
    embedding_backend: openai
    embedding_url: http://localai.ai-stack.svc:8080/v1
    embedding_model: all-MiniLM-L6-v2
    paths: [/srv/docs/**/*.md]

- name: What would change (nothing is written)
  aistack.platform.document_ingest:
    endpoint: http://127.0.0.1:8000
    paths: [docs]
    prune: true
  check_mode: true
  diff: true
  register: plan
"""

RETURN = r"""
ingested:
  description: Documents created (in check mode, that would be created).
  returned: always
  type: int
  sample: 12
updated:
  description: Documents whose content changed and were replaced.
  returned: always
  type: int
  sample: 1
unchanged:
  description: Documents whose content hash matched; they were not sent.
  returned: always
  type: int
  sample: 30
removed:
  description: Documents removed by O(prune).
  returned: always
  type: int
  sample: 0
failed_files:
  description:
    - Files that could not be ingested. The task fails when this is not 0 (Ansible reserves
      the key C(failed) for that boolean).
  returned: always
  type: int
  sample: 0
ignored:
  description:
    - Files found in directories with an unsupported type or without any text (status
      C(skipped) in RV(files)).
  returned: always
  type: int
  sample: 2
chunks:
  description: Chunks written (0 in check mode).
  returned: always
  type: int
  sample: 57
collection:
  description: Collection the documents went to.
  returned: always
  type: str
  sample: documents
base_dir:
  description: Directory the document IDs are relative to.
  returned: always
  type: str
  sample: /srv
files:
  description: One entry per file (and per pruned document), sorted by document ID.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Absolute path of the file (for removed documents, its former path).
      type: str
    document_id:
      description: Document ID in the collection.
      type: str
    status:
      description:
        - V(ingested), V(updated), V(unchanged), V(removed), V(failed), V(skipped), or
          V(pending) (not attempted because an earlier request failed for good).
      type: str
    format:
      description: Detected format (V(text), V(markdown), V(html), V(pdf)).
      type: str
    content_hash:
      description: SHA-256 of the extracted text and the metadata stored with it (the version).
      type: str
    chunks:
      description: Chunks written for the file.
      type: int
    error:
      description: Why the file failed or was skipped.
      type: str
  sample:
    - path: /srv/handbook/onboarding.md
      document_id: handbook/onboarding.md
      status: ingested
      format: markdown
      content_hash: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      chunks: 3
elapsed_s:
  description: Wall time of the ingestion in seconds.
  returned: always
  type: float
"""

import contextlib
import copy
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.aistack.platform.plugins.module_utils.documents import (
    DocumentError,
    SourceFile,
    content_hash,
    default_base_dir,
    discover,
    extract,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant import (
    QDRANT_CONNECTION_SPEC,
    client_kwargs,
    explain_open_error,
    location,
)

try:
    import httpx

    HAS_HTTPX = True
    HTTPX_IMPORT_ERROR: str | None = None
except ImportError:  # pragma: no cover - depends on the controller's Python
    httpx = None  # type: ignore[assignment]
    HAS_HTTPX = False
    HTTPX_IMPORT_ERROR = traceback.format_exc()

MARK = "aistack.platform.document_ingest"
MAX_RETRY_AFTER = 60.0
DIRECT_ONLY = ("embedding_model_path", "embedding_url", "embedding_api_key")


@contextlib.contextmanager
def plain_sys_intern() -> Iterator[None]:
    """Run with the interpreter's own ``sys.intern``.

    ansible-core 2.19 wraps ``sys.intern`` when its module_utils are imported; importing
    sentence-transformers then fails inside ``torch._dynamo`` ("substitute_in_graph expects a
    function"). The model is loaded (and used) with the original function in place.
    """
    patched = sys.intern
    original = getattr(type(patched), "unpatched_implementation", None)
    if original is None or not callable(original):
        yield
        return
    sys.intern = original
    try:
        yield
    finally:
        sys.intern = patched


class TargetError(RuntimeError):
    """A request failed. ``retryable``: worth another try (connection, 429, 5xx)."""

    def __init__(self, message: str, retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def with_retries(call: Any, retries: int, backoff: float, sleep: Any = time.sleep) -> Any:
    """Run ``call()``; on a retryable TargetError wait backoff * 2**n (or Retry-After)."""
    attempt = 0
    while True:
        try:
            return call()
        except TargetError as exc:
            if not exc.retryable or attempt >= retries:
                raise
            delay = exc.retry_after if exc.retry_after is not None else backoff * (2**attempt)
            sleep(min(max(delay, 0.0), MAX_RETRY_AFTER))
            attempt += 1


# --------------------------------------------------------------------------- targets


class ServiceTarget:
    """The RAG pipeline service over HTTP."""

    def __init__(self, params: dict[str, Any]) -> None:
        endpoint = params["endpoint"].rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": MARK}
        if params.get("api_key"):
            headers["Authorization"] = "Bearer {}".format(params["api_key"])
        verify: Any = True
        if endpoint.startswith("https://"):
            if params.get("ca_cert"):
                import ssl

                verify = ssl.create_default_context(cafile=params["ca_cert"])
            elif params.get("validate_certs") is False:
                verify = False
        self.where = f"the RAG service at {endpoint}"
        self.client = httpx.Client(
            base_url=endpoint, headers=headers, timeout=float(params["timeout"]), verify=verify
        )

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise TargetError(
                f"{self.where} did not answer {method} {url} in time ({exc})",
                retryable=True,
            ) from exc
        except httpx.TransportError as exc:
            raise TargetError(
                f"{self.where} is unreachable: {exc or type(exc).__name__}",
                retryable=True,
            ) from exc
        if response.status_code < 400:
            return response
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        detail = detail if isinstance(detail, str) else json.dumps(detail)
        status = response.status_code
        retry_after = None
        if response.headers.get("retry-after", "").isdigit():
            retry_after = float(response.headers["retry-after"])
        if status in (401, 403):
            message = f"{self.where} refused the request (HTTP {status}): {detail} - check api_key"
        else:
            message = "{} answered HTTP {} to {} {}: {}".format(
                self.where, status, method, url.split("?")[0], detail[:2000]
            )
        error = TargetError(
            message, retryable=status == 429 or status >= 500, retry_after=retry_after
        )
        error.status = status  # type: ignore[attr-defined]
        raise error

    def list_documents(self, collection: str) -> dict[str, dict[str, Any]] | None:
        try:
            response = self._request("GET", "/documents", params={"collection": collection})
        except TargetError as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise
        return {d["document_id"]: d for d in response.json().get("documents", [])}

    def ingest(self, documents: list[dict[str, Any]], collection: str) -> list[dict[str, Any]]:
        body = {"documents": documents, "collection": collection}
        try:
            response = self._request("POST", "/ingest/batch", json=body)
        except TargetError as exc:
            if getattr(exc, "status", None) == 500:
                exc.args = (
                    f"{exc} (see the service's log; a collection {collection!r} whose vectors "
                    "do not match the service's embedding model is a common cause - compare it "
                    "with aistack.platform.qdrant_collection)",
                )
            raise
        return list(response.json()["results"])

    def delete(self, document_id: str, collection: str) -> None:
        try:
            self._request(
                "DELETE",
                "/documents/{}".format(quote(document_id, safe="")),
                params={"collection": collection},
            )
        except TargetError as exc:
            if getattr(exc, "status", None) == 404 and "/" in document_id:
                exc.args = (
                    f"{exc} (this service version cannot delete document IDs that contain '/': "
                    "its route must be DELETE /documents/{document_id:path})",
                )
            raise

    def preflight(self, collection: str) -> None:
        """Nothing to check over HTTP: the service validates its own collection."""

    def close(self) -> None:
        self.client.close()


class PipelineTarget:
    """Straight into Qdrant through the RAG service's own Pipeline, in this process."""

    def __init__(self, module: AnsibleModule) -> None:
        params = module.params
        try:
            from rag_pipeline.models import DocumentIn
            from rag_pipeline.pipeline import Pipeline
            from rag_pipeline.settings import Settings
            from rag_pipeline.stores import CollectionNotFoundError, StoreUnavailableError
        except ImportError:
            module.fail_json(
                msg=missing_required_lib(
                    "rag_pipeline (the RAG service package; or use endpoint= instead of url/path)"
                ),
                exception=traceback.format_exc(),
            )
        self._document_in = DocumentIn
        self._not_found = CollectionNotFoundError
        self._unavailable = StoreUnavailableError
        self.where = location(params)
        try:
            settings = Settings(
                vector_store="qdrant",
                qdrant_url=params.get("url"),
                qdrant_api_key=params.get("api_key"),
                qdrant_path=params.get("path"),
                embedding_backend=params["embedding_backend"],
                embedding_model=params["embedding_model"],
                embedding_model_path=params.get("embedding_model_path"),
                embedding_url=params.get("embedding_url"),
                embedding_api_key=params.get("embedding_api_key"),
                chunk_size=params["chunk_size"],
                chunk_overlap=params["chunk_overlap"],
                collection_name=params["collection"],
            )
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            module.fail_json(msg=f"Invalid ingestion settings: {exc}")
        try:
            self.pipeline = Pipeline.from_settings(settings)
        except Exception as exc:
            hint = (
                "the RAG service probably has this storage open: ingest through its "
                "endpoint instead"
            )
            module.fail_json(msg=f"Cannot open {self.where}: {explain_open_error(exc, hint)}")
        store = self.pipeline.store
        tls = params.get("ca_cert") or params.get("validate_certs") is False
        if params.get("url") and tls and hasattr(store, "client"):
            # Settings carry no TLS options: give the store a client built from ours.
            from qdrant_client import QdrantClient

            store.client.close()
            store.client = QdrantClient(check_compatibility=False, **client_kwargs(params))

    def _call(self, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except self._unavailable as exc:
            raise TargetError(str(exc), retryable=True) from exc
        except self._not_found:
            raise
        except Exception as exc:
            name = type(exc).__name__
            retryable = name in ("EmbedderError",)
            raise TargetError(f"{name}: {to_native(exc)}", retryable=retryable) from exc

    def list_documents(self, collection: str) -> dict[str, dict[str, Any]] | None:
        try:
            docs = self._call(self.pipeline.list_documents, collection)
        except self._not_found:
            return None
        return {d.document_id: d.model_dump() for d in docs}

    def preflight(self, collection: str) -> None:
        """Load the embedder; fail clearly when the collection's vectors do not fit it."""
        with plain_sys_intern():
            try:
                self.pipeline.embedder.dimension  # noqa: B018 - loads the model
            except Exception as exc:
                raise TargetError(
                    f"Cannot load the embedding backend ({type(exc).__name__}: {exc})",
                    retryable=type(exc).__name__ == "EmbedderError",
                ) from exc
        store = self.pipeline.store
        client = getattr(store, "client", None)
        if client is None or not client.collection_exists(collection):
            return
        from rag_pipeline.stores.qdrant import DENSE, SPARSE

        params = client.get_collection(collection).config.params
        vectors = (
            params.vectors if isinstance(params.vectors, dict) else {"<unnamed>": params.vectors}
        )
        sparse = params.sparse_vectors or {}
        dimension = self.pipeline.embedder.dimension
        wanted = (
            f"vectors: {{{DENSE}: {{size: {dimension}, distance: Cosine}}}}, "
            f"sparse_vectors: {{{SPARSE}: {{modifier: idf}}}}"
        )
        problem = None
        if DENSE not in vectors:
            problem = "has no dense vector named {!r} (it has {})".format(
                DENSE, sorted(k for k in vectors if vectors[k] is not None) or "none"
            )
        elif vectors[DENSE].size != dimension:
            problem = (
                f"stores {DENSE!r} vectors of size {vectors[DENSE].size} but the embedding "
                f"model produces {dimension}"
            )
        elif SPARSE not in sparse:
            problem = f"has no sparse vector named {SPARSE!r}"
        if problem:
            raise TargetError(
                f"Collection {collection} in {self.where} {problem}: create it with the "
                f"pipeline's layout ({wanted}) using aistack.platform.qdrant_collection "
                "(recreate: true drops its points)"
            )

    def ingest(self, documents: list[dict[str, Any]], collection: str) -> list[dict[str, Any]]:
        docs = [self._document_in(**d) for d in documents]
        with plain_sys_intern():
            response = self._call(self.pipeline.ingest_batch, docs, collection)
        return [r.model_dump() for r in response.results]

    def delete(self, document_id: str, collection: str) -> None:
        self._call(self.pipeline.delete_document, document_id, collection)

    def close(self) -> None:
        self.pipeline.close()


# --------------------------------------------------------------------------- planning


def batches(
    items: list[tuple[SourceFile, dict[str, Any]]], batch_size: int, max_bytes: int
) -> list[list[tuple[SourceFile, dict[str, Any]]]]:
    """Split (file, document) pairs into requests bounded by count and encoded size."""
    out: list[list[tuple[SourceFile, dict[str, Any]]]] = []
    current: list[tuple[SourceFile, dict[str, Any]]] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item[1], ensure_ascii=False).encode("utf-8"))
        if current and (len(current) >= batch_size or size + item_size > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        out.append(current)
    return out


def same_but_moved(doc: dict[str, Any], have: dict[str, Any]) -> str | None:
    """The hash ``doc`` would have at the stored ``source_path``.

    The same files read from another checkout, CI workspace or mount point differ only in
    their absolute path; that alone is not a change worth re-embedding them for.
    """
    stored = (have.get("metadata") or {}).get("source_path")
    if not stored or stored == doc["metadata"].get("source_path"):
        return None
    return content_hash(doc["text"], {**doc["metadata"], "source_path": stored})


def run(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    started = time.perf_counter()
    collection = params["collection"]
    result: dict[str, Any] = {
        "changed": False,
        "ingested": 0,
        "updated": 0,
        "unchanged": 0,
        "removed": 0,
        "failed_files": 0,
        "ignored": 0,
        "chunks": 0,
        "collection": collection,
        "base_dir": "",
        "files": [],
        "elapsed_s": 0.0,
    }
    for key, minimum in (("batch_size", 1), ("max_batch_bytes", 1), ("chunk_size", 1)):
        if params[key] < minimum:
            module.fail_json(msg=f"{key} must be at least {minimum}, got {params[key]}")
    if params["retries"] < 0 or params["backoff"] < 0 or params["chunk_overlap"] < 0:
        module.fail_json(msg="retries, backoff and chunk_overlap must not be negative")
    if params["chunk_overlap"] >= params["chunk_size"]:
        module.fail_json(msg="chunk_overlap must be smaller than chunk_size")
    if params.get("endpoint"):
        given = [k for k in DIRECT_ONLY if params.get(k)]
        if given:
            module.warn(
                "{} only apply with url or path; the RAG service at endpoint uses its own "
                "embedding settings".format(", ".join(given))
            )

    # 1. Files and their text (nothing is sent unless every file can be read).
    base_dir = os.path.abspath(params["base_dir"] or default_base_dir(params["paths"]))
    result["base_dir"] = base_dir
    try:
        sources, unsupported = discover(
            params["paths"], base_dir, params["recursive"], params["id_prefix"]
        )
    except DocumentError as exc:
        module.fail_json(msg=to_native(exc), **result)
    entries: dict[str, dict[str, Any]] = {}
    for source in unsupported:
        entries[source.document_id] = {
            "path": source.path,
            "document_id": source.document_id,
            "status": "skipped",
            "error": "unsupported file type",
        }
    documents: list[tuple[SourceFile, dict[str, Any], str]] = []
    errors = []
    for source in sources:
        entry = {"path": source.path, "document_id": source.document_id, "format": source.format}
        entries[source.document_id] = entry
        try:
            extracted = extract(source)
        except DocumentError as exc:
            entry.update(status="failed", error=to_native(exc))
            errors.append(to_native(exc))
            continue
        if not extracted.text.split():
            entry.update(status="skipped", error="no text could be extracted")
            module.warn(f"{source.path}: no text could be extracted, skipped")
            continue
        metadata = dict(params["metadata"])
        metadata.update(extracted.metadata)
        metadata.update(source_path=source.path, format=source.format, ingested_by=MARK)
        digest = content_hash(extracted.text, metadata)
        entry.update(content_hash=digest, chunks=0)
        doc = {"text": extracted.text, "document_id": source.document_id, "metadata": metadata}
        documents.append((source, doc, digest))

    def finish() -> dict[str, Any]:
        files = [entries[k] for k in sorted(entries)]
        for status in ("ingested", "updated", "unchanged", "removed"):
            result[status] = sum(1 for f in files if f.get("status") == status)
        result["failed_files"] = sum(1 for f in files if f.get("status") == "failed")
        result["ignored"] = sum(1 for f in files if f.get("status") == "skipped")
        result["chunks"] = sum(f.get("chunks", 0) for f in files)
        result["files"] = files
        result["changed"] = bool(result["ingested"] or result["updated"] or result["removed"])
        result["elapsed_s"] = round(time.perf_counter() - started, 3)
        return result

    if errors:
        finish()
        module.fail_json(
            msg="{} file(s) cannot be read, nothing was ingested:\n{}".format(
                len(errors), "\n".join(errors)
            ),
            **result,
        )

    # 2. What the collection holds.
    target: Any = ServiceTarget(params) if params.get("endpoint") else PipelineTarget(module)
    retry = {"retries": params["retries"], "backoff": params["backoff"]}
    try:
        try:
            existing = with_retries(lambda: target.list_documents(collection), **retry)
        except TargetError as exc:
            finish()
            module.fail_json(msg=to_native(exc), **result)
        existing = existing or {}

        pending: list[tuple[SourceFile, dict[str, Any]]] = []
        for source, doc, digest in documents:
            entry = entries[source.document_id]
            have = existing.get(source.document_id)
            if have is not None and have.get("content_hash") in (digest, same_but_moved(doc, have)):
                entry.update(status="unchanged", chunks=0)
            else:
                entry["status"] = "updated" if have is not None else "ingested"
                pending.append((source, doc))

        current_ids = {s.document_id for s, _d, _h in documents}
        current_ids.update(s.document_id for s in unsupported)
        prunable = []
        if params["prune"]:
            for document_id, info in sorted(existing.items()):
                meta = info.get("metadata") or {}
                source_path = str(meta.get("source_path") or "")
                inside = os.path.commonpath([base_dir, source_path or "/"]) == base_dir
                if meta.get("ingested_by") == MARK and inside and document_id not in current_ids:
                    prunable.append(document_id)
                    entries[document_id] = {
                        "path": source_path,
                        "document_id": document_id,
                        "status": "removed",
                        "content_hash": info.get("content_hash", ""),
                        "chunks": 0,
                    }

        if module._diff:
            result["diff"] = {
                "before": {
                    d: existing[d].get("content_hash", "")
                    for d in sorted(existing)
                    if d in prunable or (d in entries and entries[d].get("status") == "updated")
                },
                "after": {
                    s.document_id: entries[s.document_id]["content_hash"] for s, _d in pending
                },
            }
            result["diff"]["before_header"] = f"{collection} (document_id: content_hash)"
            result["diff"]["after_header"] = result["diff"]["before_header"]

        if module.check_mode or not (pending or prunable):
            return finish()

        # 3. Write: batches of new and changed documents, then prune.
        if pending:
            try:
                with_retries(lambda: target.preflight(collection), **retry)
            except TargetError as exc:
                for source, _doc in pending:
                    entries[source.document_id].update(status="pending")
                finish()
                module.fail_json(msg=to_native(exc), **result)
        failures: list[str] = []
        fatal: str | None = None
        confirmed: set[str] = set()
        hash_skew: list[str] = []  # documents the target hashed differently (an older service)
        for batch in batches(pending, params["batch_size"], params["max_batch_bytes"]):
            if fatal:
                for source, _doc in batch:
                    entries[source.document_id].update(status="pending")
                continue
            try:
                outcome = with_retries(
                    lambda b=batch: target.ingest([d for _s, d in b], collection), **retry
                )
            except TargetError as exc:
                if exc.retryable or len(batch) == 1:
                    for source, _doc in batch:
                        entries[source.document_id].update(status="failed", error=to_native(exc))
                    names = ", ".join(s.path for s, _d in batch)
                    failures.append(f"{names}: {exc}")
                    if exc.retryable:
                        fatal = to_native(exc)
                    continue
                # The service rejected the batch: send its files one by one to name the culprit.
                outcome = []
                for source, doc in batch:
                    try:
                        outcome.extend(
                            with_retries(lambda d=doc: target.ingest([d], collection), **retry)
                        )
                    except TargetError as single:
                        entries[source.document_id].update(status="failed", error=to_native(single))
                        failures.append(f"{source.path}: {single}")
                        if single.retryable:
                            fatal = to_native(single)
                            break
            for item in outcome:
                entry = entries.get(item["document_id"])
                if entry is None:
                    continue
                status = {"created": "ingested"}.get(item["status"], item["status"])
                if item.get("content_hash") not in (None, entry.get("content_hash")):
                    hash_skew.append(item["document_id"])
                entry.update(status=status, chunks=int(item.get("chunks_created", 0)))
                confirmed.add(item["document_id"])
        for source, _doc in pending:
            entry = entries[source.document_id]
            if source.document_id not in confirmed and entry["status"] in ("ingested", "updated"):
                entry["status"] = "pending"  # planned, never confirmed by the target
        if hash_skew:
            module.warn(
                f"the target computed other content hashes than this module for "
                f"{len(hash_skew)} document(s) (first: {hash_skew[0]}): it is most likely a RAG "
                "service older than rag_pipeline 0.2.0, which hashes the text only, ignores "
                "metadata-only changes and makes every run report changes; upgrade the service"
            )

        if not failures:
            for document_id in prunable:
                try:
                    with_retries(lambda d=document_id: target.delete(d, collection), **retry)
                except TargetError as exc:
                    entries[document_id].update(status="failed", error=to_native(exc))
                    failures.append(f"{document_id} (prune): {exc}")
                    break
        else:
            for document_id in prunable:
                entries[document_id].update(
                    status="pending", error="not pruned: other files failed"
                )
    finally:
        target.close()

    finish()
    if failures:
        module.fail_json(
            msg="{} file(s) failed to ingest ({} ingested, {} updated before the failure are "
            "complete; run again to finish):\n{}".format(
                result["failed_files"], result["ingested"], result["updated"], "\n".join(failures)
            ),
            **result,
        )
    return result


def main() -> None:
    connection = copy.deepcopy(QDRANT_CONNECTION_SPEC)
    argument_spec: dict[str, Any] = dict(
        paths=dict(type="list", elements="path", required=True),
        recursive=dict(type="bool", default=True),
        base_dir=dict(type="path"),
        id_prefix=dict(type="str", default=""),
        metadata=dict(type="dict", default={}),
        collection=dict(type="str", default="documents"),
        endpoint=dict(type="str"),
        prune=dict(type="bool", default=False),
        batch_size=dict(type="int", default=16),
        max_batch_bytes=dict(type="int", default=4000000),
        retries=dict(type="int", default=3),
        backoff=dict(type="float", default=1.0),
        embedding_backend=dict(type="str", choices=["local", "openai"], default="local"),
        embedding_model=dict(type="str", default="all-MiniLM-L6-v2"),
        embedding_model_path=dict(type="path"),
        embedding_url=dict(type="str"),
        embedding_api_key=dict(type="str", no_log=True),
        chunk_size=dict(type="int", default=512),
        chunk_overlap=dict(type="int", default=50),
    )
    argument_spec.update(connection)
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[["endpoint", "url", "path"], ["path", "api_key"], ["path", "ca_cert"]],
        required_one_of=[["endpoint", "url", "path"]],
        supports_check_mode=True,
    )
    if module.params.get("endpoint") and not HAS_HTTPX:
        module.fail_json(msg=missing_required_lib("httpx"), exception=HTTPX_IMPORT_ERROR)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
