# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""llm_benchmark engine: load-tests OpenAI-compatible endpoints (stdlib only).

Used by the ``aistack.platform.llm_benchmark`` module and runnable on its own::

    python -m ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark \\
        --config bench.yaml

or, with this directory copied anywhere as ``llm_benchmark/`` (a Kubernetes Job)::

    python -m llm_benchmark --config /config/bench.json

All imports inside the package are relative, so both spellings work.
"""
