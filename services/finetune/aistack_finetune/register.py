"""Loads a trained adapter into a running vLLM server as a LoRA adapter (vLLM's runtime LoRA
API, POST /v1/load_lora_adapter; the server runs with --enable-lora and
VLLM_ALLOW_RUNTIME_LORA_UPDATING=True). Standard library only."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable


class RegisterError(RuntimeError):
    pass


def register_vllm(
    base_url: str,
    name: str,
    path: str,
    api_key: str = "",
    wait_s: float = 600,
    log: Callable[[str], None] = print,
) -> str:
    """Loads the adapter at ``path`` (as the vLLM server sees it) under ``name``; waits up to
    ``wait_s`` for a server that is not answering yet. Returns 'loaded' or 'already loaded'."""
    url = base_url.rstrip("/") + "/load_lora_adapter"
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body = json.dumps({"lora_name": name, "lora_path": path}).encode()
    deadline = time.monotonic() + wait_s
    while True:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120):
                log(f"LoRA adapter {name} loaded into {base_url} from {path}")
                return "loaded"
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            # Registering again (a re-run Job) is not an error.
            if exc.code == 400 and "already" in detail.lower():
                log(f"LoRA adapter {name} was already loaded in {base_url}")
                return "already loaded"
            raise RegisterError(f"vLLM refused the adapter: HTTP {exc.code}: {detail}") from exc
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RegisterError(f"vLLM at {base_url} unreachable: {exc}") from exc
            log(f"waiting for vLLM at {base_url}: {exc}")
            time.sleep(5)
