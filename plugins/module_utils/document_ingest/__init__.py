# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the ``aistack.platform.document_ingest`` module.

- ``targets``: the RAG service over HTTP, or ``rag_pipeline.embedded`` in process (the
  service's public in-process API; nothing else of rag_pipeline is used), and retries.
- ``plan``: the documents of the files, which of them the collection already holds (text
  hash and metadata), what can be pruned, request batches, the diff.
- ``run``: one task, returning the module result or raising IngestFailed.

File discovery and text extraction live in ``module_utils/documents.py``.

Nothing here imports ``ansible.module_utils.basic`` (it patches ``sys.intern`` in the
importing process, after which torch cannot be imported), nor rag_pipeline at import time.
"""
