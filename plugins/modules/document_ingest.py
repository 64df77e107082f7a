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
    embedded in-process by the service's own code through its public in-process API
    (C(rag_pipeline.embedded) of the C(rag_pipeline) Python package), so both targets store
    exactly the same chunks and vectors.
  - Each document's C(document_id) is the file's path relative to O(base_dir) (plus
    O(id_prefix)), so it is stable across runs and a changed file replaces its document.
  - Idempotent by text and metadata. The SHA-256 of each file's extracted text is compared
    with the C(text_hash) the collection lists for that document, and the metadata the module
    would store (O(metadata), the title found in the file, C(source_path), C(format)) with the
    stored metadata; unchanged files are not sent at all, and a run where nothing changed
    reports C(changed=false). A change of O(metadata) alone updates (re-embeds) the documents
    concerned; the same files read from another location (another checkout or CI workspace)
    differ only in C(source_path) and are left unchanged.
  - A document the collection lists without C(text_hash) (written by a RAG service older than
    0.3.0, or a service that does not report it) is sent, and the status is what the service
    answers (it leaves unchanged versions alone); such documents are re-written once, after
    which they carry C(text_hash).
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
      - Entries found that are not regular files (FIFOs, sockets, devices) are skipped with
        the reason, and never opened. Files that cannot be read - a symbolic link loop, a
        dangling symbolic link, a file removed while the task runs, a name that is not UTF-8
        (shown with its bytes escaped as C(\xNN)), a directory that cannot be listed,
        content that is not UTF-8 text or not a readable PDF - have status C(failed); the
        other files are still ingested and the task fails at the end (see RV(failed_files)).
      - A path given here that does not exist or is neither a regular file nor a directory
        (a dangling link, a FIFO) fails the task before anything is read.
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
      - Nothing is removed when any file of the run failed (a file that could not be read
        may be one whose document would otherwise look deleted); those documents are listed
        with status C(pending).
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
      - With O(url) or O(path), this and the following options are passed to
        C(rag_pipeline.embedded) as the service settings of the same name (the connection
        options as C(qdrant_url), C(qdrant_api_key), C(qdrant_path), C(qdrant_ca_cert),
        C(qdrant_verify_tls) and C(qdrant_timeout)).
      - V(local) embeds in-process with sentence-transformers (by default the bundled
        all-MiniLM-L6-v2 model, 384 dimensions); V(openai) calls an OpenAI-compatible
        C(/v1/embeddings) at O(embedding_url).
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
    description:
      - Tokens of the embedder per chunk, title prefix included (with O(url) or O(path); the
        service uses its own setting). Unset or V(0) is the embedder's window (at most 256).
      - A size over the embedder's window fails (its chunks would be truncated), and so does
        another size than the one the collection was made with.
    type: int
  chunk_overlap:
    description:
      - Tokens shared by consecutive chunks (with O(url) or O(path)). Unset is an eighth of
        the chunk size.
    type: int
attributes:
  check_mode:
    support: full
    description:
      - The collection is read (to know what is unchanged) but nothing is written or
        embedded; RV(files) says what would happen. A document listed without C(text_hash)
        (see above) is reported as V(updated).
  diff_mode:
    support: full
    description:
      - Per document created, updated or removed, its C(text_hash) and C(metadata) before and
        after.
  platform:
    support: full
    platforms: posix
    description: Runs where the files are (usually the controller, C(localhost)).
notes:
  - A file that cannot be read fails alone - the other files are ingested, and the task
    fails at the end with the full result (RV(files) says which files failed and why).
  - A failed request is retried; when it still fails, the task fails naming the files of
    that request. Documents ingested before stay complete and consistent (the service
    replaces a document atomically); running the task again finishes the job.
  - With O(path), embedded Qdrant is locked by this task while it runs, so the RAG service
    must not have the same storage open - use O(endpoint) while the service runs.
  - With O(url) or O(path) the Python package C(rag_pipeline) 0.3.0 or later (the RAG
    service's code, with its C(local) extra for O(embedding_backend=local)) must be installed
    where the module runs. With O(endpoint) only C(httpx) is needed.
  - The collection layout the embedding model needs (to create the collection beforehand with
    M(aistack.platform.qdrant_collection)) is printed by C(rag-pipeline layout) and served by
    the service at C(GET /collection-layout).
requirements:
  - httpx (with O(endpoint))
  - rag_pipeline >= 0.3.0 (with O(url) or O(path))
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
  description:
    - Documents the collection holds as they are (same text hash and metadata; they were not
      sent), or that the service reported unchanged.
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
    - Files that could not be read or ingested (status C(failed) in RV(files)). The other
      files of the run are processed all the same; the task fails at the end when this is
      not 0, with this whole result (Ansible reserves the key C(failed) for that boolean).
  returned: always
  type: int
  sample: 0
ignored:
  description:
    - Files found in directories with an unsupported type, without any text, or that are
      not regular files (FIFOs, sockets, devices) (status C(skipped) in RV(files)).
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
      description:
        - Absolute path of the file (for removed documents, its former path).
        - Bytes of a file name that is not UTF-8 are shown escaped, as C(\xNN).
      type: str
    document_id:
      description: Document ID in the collection.
      type: str
    status:
      description:
        - V(ingested), V(updated), V(unchanged), V(removed), V(failed), V(skipped), or
          V(pending) (not attempted because an earlier request failed for good, or a
          document not pruned because a file failed).
      type: str
    format:
      description: Detected format (V(text), V(markdown), V(html), V(pdf)).
      type: str
    content_hash:
      description:
        - The version hash of the stored document as the target returned (ingested, updated)
          or listed it (unchanged, removed) - the service's own definition, which covers text
          and metadata.
        - Returned when known, so not for files not sent in check mode, nor for failed ones.
      type: str
    text_hash:
      description: SHA-256 of the file's extracted text (UTF-8), for files with text.
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
      content_hash: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
      text_hash: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      chunks: 3
elapsed_s:
  description: Wall time of the ingestion in seconds.
  returned: always
  type: float
"""

import copy
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.aistack.platform.plugins.module_utils.document_ingest.run import (
    IngestFailed,
    run,
)
from ansible_collections.aistack.platform.plugins.module_utils.document_ingest.targets import (
    HAS_HTTPX,
    HTTPX_IMPORT_ERROR,
    MissingLibrary,
)
from ansible_collections.aistack.platform.plugins.module_utils.qdrant import (
    QDRANT_CONNECTION_SPEC,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "paths": {"type": "list", "elements": "path", "required": True},
    "recursive": {"type": "bool", "default": True},
    "base_dir": {"type": "path"},
    "id_prefix": {"type": "str", "default": ""},
    "metadata": {"type": "dict", "default": {}},
    "collection": {"type": "str", "default": "documents"},
    "endpoint": {"type": "str"},
    "prune": {"type": "bool", "default": False},
    "batch_size": {"type": "int", "default": 16},
    "max_batch_bytes": {"type": "int", "default": 4000000},
    "retries": {"type": "int", "default": 3},
    "backoff": {"type": "float", "default": 1.0},
    "embedding_backend": {"type": "str", "choices": ["local", "openai"], "default": "local"},
    "embedding_model": {"type": "str", "default": "all-MiniLM-L6-v2"},
    "embedding_model_path": {"type": "path"},
    "embedding_url": {"type": "str"},
    "embedding_api_key": {"type": "str", "no_log": True},
    "chunk_size": {"type": "int"},
    "chunk_overlap": {"type": "int"},
    **copy.deepcopy(QDRANT_CONNECTION_SPEC),
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[["endpoint", "url", "path"], ["path", "api_key"], ["path", "ca_cert"]],
        required_one_of=[["endpoint", "url", "path"]],
        supports_check_mode=True,
    )
    if module.params.get("endpoint") and not HAS_HTTPX:
        module.fail_json(msg=missing_required_lib("httpx"), exception=HTTPX_IMPORT_ERROR)
    try:
        result = run(
            module.params, check_mode=module.check_mode, diff=module._diff, warn=module.warn
        )
    except MissingLibrary as exc:
        module.fail_json(msg=missing_required_lib(exc.library), exception=exc.error)
    except IngestFailed as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
