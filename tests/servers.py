"""Servers the tests start on a free loopback port, and waiting until they answer.

Standard library only (uvicorn is imported where a server runs in a thread, and every venv that
runs one has it): tests/agents import this inside .venv-agents too.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    """A TCP port free on loopback right now (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Wait until ``url`` answers below 500 (a server the tests started); fail early when its
    process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server the tests started (kill it after 10 s)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving(
    argv: Sequence[str], port: int, health: str, *, timeout: float = 60, **popen: Any
) -> Iterator[str]:
    """Runs ``argv`` (a server told to listen on 127.0.0.1:``port``) for the ``with`` block:
    yields its base URL once GET ``health`` answers below 500, stops it on the way out."""
    proc = subprocess.Popen(list(argv), **popen)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + health, proc, timeout)
        yield url
    finally:
        stop(proc)


class UvicornThread:
    """An ASGI app under uvicorn in a thread of this process, on loopback (``port`` 0: the
    system picks one): no second interpreter, and objects such as a loaded model are shared."""

    def __init__(self, app: Any, port: int = 0, timeout: float = 30, **config: Any) -> None:
        import uvicorn

        config.setdefault("log_level", "warning")
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {port} in {timeout}s")
            time.sleep(0.02)
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 15) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


@contextmanager
def uvicorn_thread(app: Any, port: int = 0, **config: Any) -> Iterator[str]:
    """``app`` under uvicorn in a thread for the ``with`` block; yields its base URL."""
    server = UvicornThread(app, port, **config)
    try:
        yield server.url
    finally:
        server.stop()
