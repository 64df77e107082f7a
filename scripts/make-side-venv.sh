#!/usr/bin/env bash
# Create .venv-NAME from requirements/NAME.txt: the side virtualenvs of stacks whose pins conflict
# with requirements/lock.txt (infinity-emb, the agents, CrewAI, ...). Optional EDITABLE_DIRs are
# then installed editable with --no-deps (their dependencies are all pinned in the requirements
# file, build tools included, hence no build isolation).
# Idempotent: does nothing when the venv exists, CHECK_EXE runs, and the requirements file, the
# editable packages' metadata and this script are unchanged since the last build.
# Usage: scripts/make-side-venv.sh NAME CHECK_EXE [EDITABLE_DIR ...]
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 NAME CHECK_EXE [EDITABLE_DIR ...]" >&2
  exit 2
fi
name="$1" check="$2"
shift 2
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-$name"
req="$root/requirements/$name.txt"
python="${PYTHON:-python3.11}"
stamp="$venv/.requirements.sha256"
[[ -f "$req" ]] || { echo "no requirements file: $req" >&2; exit 2; }

inputs=("$req" "$0")
for dir in "$@"; do
  inputs+=("$root/$dir/pyproject.toml")
  # The version lives in the package's __init__.py (hatch dynamic version).
  while IFS= read -r init; do inputs+=("$init"); done \
    < <(find "$root/$dir" -mindepth 2 -maxdepth 2 -name __init__.py | sort)
done
want="$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/$check" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$name venv up to date: $venv"
  exit 0
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
for dir in "$@"; do
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    --no-build-isolation -e "$root/$dir"
done
"$venv/bin/$check" --help >/dev/null
echo "$want" >"$stamp"
echo "$name venv ready: $venv"
