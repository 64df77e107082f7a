"""`aistack-finetune register`: the adapter is loaded into vLLM through its runtime LoRA API
(POST /v1/load_lora_adapter), answered here by a loopback server that keeps vLLM's contract
(200, then 400 for a name already loaded; the API key checked)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aistack_finetune.cli import main


@pytest.fixture
def vllm() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    loaded: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.headers.get("Authorization") != "Bearer k3y":
                status, text = 401, "unauthorized"
            elif self.path != "/v1/load_lora_adapter":
                status, text = 404, "not found"
            elif any(a["lora_name"] == body["lora_name"] for a in loaded):
                status, text = (
                    400,
                    f"The lora adapter '{body['lora_name']}' has already been loaded.",
                )
            else:
                loaded.append(body)
                status, text = (
                    200,
                    f"Success: LoRA adapter '{body['lora_name']}' added successfully.",
                )
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", loaded
    server.shutdown()
    server.server_close()


def test_register_loads_the_adapter_once(
    vllm: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, loaded = vllm
    adapter = tmp_path / "adapter"
    args = [
        "register",
        "--vllm-url",
        url,
        "--name",
        "ft-default",
        "--path",
        "/adapters/default/adapter",
    ]
    # No trained adapter yet: nothing is sent.
    assert main([*args, "--adapter-dir", str(adapter)]) == 2
    assert "no trained adapter" in capsys.readouterr().err and not loaded
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    monkeypatch.setenv("VLLM_API_KEY", "wrong")
    assert main([*args, "--adapter-dir", str(adapter)]) == 2
    assert "HTTP 401" in capsys.readouterr().err
    monkeypatch.setenv("VLLM_API_KEY", "k3y")
    assert main([*args, "--adapter-dir", str(adapter)]) == 0
    assert loaded == [{"lora_name": "ft-default", "lora_path": "/adapters/default/adapter"}]
    # A re-run Job registers again: not an error, still loaded once.
    assert main([*args, "--adapter-dir", str(adapter)]) == 0
    assert "already loaded" in capsys.readouterr().out
    assert len(loaded) == 1
