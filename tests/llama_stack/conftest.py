"""tests/llama_stack runs in .venv-llamastack (llama-stack needs Python 3.12 and pins that
conflict with requirements/lock.txt): the main venv collects only the runner
(test_in_side_venv.py), the side venv only the suite."""

from __future__ import annotations

import importlib.util

SUITE = ["test_server.py", "embedding_server.py"]
RUNNERS = ["test_in_side_venv.py"]
if importlib.util.find_spec("llama_stack") is None:
    collect_ignore = SUITE
else:
    collect_ignore = [*RUNNERS, "embedding_server.py"]
