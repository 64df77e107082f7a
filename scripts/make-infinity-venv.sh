#!/usr/bin/env bash
# Create .venv-infinity (infinity-emb embeddings server) from requirements/infinity.txt.
# Idempotent: does nothing when the venv exists and was built from the same requirements file.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${INFINITY_VENV:-$root/.venv-infinity}"
req="$root/requirements/infinity.txt"
python="${PYTHON:-python3.11}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -x "$venv/bin/infinity_emb" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "infinity venv up to date: $venv"
  exit 0
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
"$venv/bin/infinity_emb" --help >/dev/null
echo "$want" >"$stamp"
echo "infinity venv ready: $venv"
