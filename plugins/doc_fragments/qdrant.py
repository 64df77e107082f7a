# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Connection options of every module that talks to Qdrant (module_utils/qdrant.py).
    DOCUMENTATION = r"""
options:
  url:
    description:
      - URL of a Qdrant server's REST API, for example C(http://qdrant.ai-stack.svc:6333) or
        C(https://qdrant.example.com).
      - Mutually exclusive with O(path); one of the two is required.
    type: str
  api_key:
    description:
      - Qdrant API key (sent as the C(api-key) header). Only used with O(url).
    type: str
  timeout:
    description: Timeout in seconds of each request to the Qdrant server.
    type: int
    default: 60
  validate_certs:
    description:
      - Verify the server's TLS certificate when O(url) is C(https://).
      - Setting this to V(false) should only be done on trusted networks.
    type: bool
    default: true
  ca_cert:
    description:
      - Path to a PEM file with the CA certificate(s) that signed the server's certificate,
        for C(https://) URLs with a private CA. Overrides O(validate_certs).
    type: path
  path:
    description:
      - Directory of an embedded (local-mode) Qdrant storage, opened in-process with
        C(qdrant-client). It is created when missing.
      - Embedded mode takes an exclusive lock on the directory while the task runs, so it fails
        while another process (for example the RAG service started with the same
        C(QDRANT_PATH)) has it open.
      - Embedded Qdrant does exact search without HNSW and keeps no payload indexes,
        quantization, optimizer or on-disk settings; modules say which options they ignore in
        this mode.
      - Mutually exclusive with O(url); one of the two is required.
    type: path
requirements:
  - qdrant-client >= 1.12
"""
