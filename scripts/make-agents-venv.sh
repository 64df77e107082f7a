#!/usr/bin/env bash
# Create .venv-agents (services/agents: LangGraph router, A2A server) from requirements/agents.txt
# and install services/agents into it, editable. Idempotent: does nothing when the venv exists
# and was built from the same requirements file and package metadata.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${AGENTS_VENV:-$root/.venv-agents}"
req="$root/requirements/agents.txt"
meta="$root/services/agents/pyproject.toml"
python="${PYTHON:-python3.11}"
stamp="$venv/.requirements.sha256"
want="$(cat "$req" "$meta" "$root/services/agents/aistack_agents/__init__.py" | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/aistack-agents" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "agents venv up to date: $venv"
  exit 0
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
# Build tools are pinned in agents.txt, hence no build isolation; deps are all pinned above.
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
  -e "$root/services/agents"
"$venv/bin/aistack-agents" --help >/dev/null
echo "$want" >"$stamp"
echo "agents venv ready: $venv"
