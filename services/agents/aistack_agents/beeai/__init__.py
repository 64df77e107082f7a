"""The lab's BeeAI agent: a beeai-framework RequirementAgent on any OpenAI-compatible endpoint
(Llama Stack in the lab), with the RAG service as a tool (and MCP tools when MCP_URL is set),
served over A2A on port 9999 by beeai-framework's A2A executor. Its own virtualenv and image
(requirements/beeai.txt): beeai-framework pins a2a-sdk 0.3, the router's venv has 1.x."""

from __future__ import annotations

import os

# Nothing leaves the process unless configured: litellm (beeai-framework's model layer) fetches
# its model cost map from the internet at import time unless told to use the bundled copy. Set
# before any beeai_framework/litellm import: Python runs this file before any module of the
# package.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
