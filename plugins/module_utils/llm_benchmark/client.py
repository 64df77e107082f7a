# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lean asyncio HTTP/1.1 client for OpenAI-compatible streaming endpoints.

One :class:`_Conn` protocol object per keep-alive connection parses the status line, the
headers, ``Content-Length`` / chunked / read-until-close bodies and the SSE ``data:`` lines by
hand, and stamps each event with ``time.perf_counter()`` inside ``data_received``. No per-chunk
coroutine, no per-request object other than one result tuple: this is what lets a single core
drive hundreds of streams per second while the server under test shares the machine.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
from collections.abc import Callable
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ERR_CANCELLED",
    "EndpointError",
    "HttpTarget",
    "Pool",
    "Result",
    "fetch_json",
    "make_ssl_context",
]

# Result tuple: (ok, status, first_ts, last_ts, end_ts, chunks, usage_out, usage_in, error)
Result = tuple[bool, int, float, float, float, int, int, int, str]

ERR_CANCELLED = "cancelled"

_HEAD = 0
_LEN = 1
_CHUNK_SIZE = 2
_CHUNK_DATA = 3
_CHUNK_TRAILER = 4
_EOF = 5
_IDLE = 6
_CHUNK_CRLF = 7


class EndpointError(Exception):
    """The endpoint could not be reached or answered with an error."""


def make_ssl_context(validate_certs: bool = True, ca_path: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
    if not validate_certs:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class HttpTarget:
    """Parsed base URL: scheme, host, port, path prefix and the fixed request-head lines."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        default_port = self.port == (443 if self.scheme == "https" else 80)
        host_header = self.host if default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not default_port:
            host_header = f"[{self.host}]:{self.port}"
        lines = [f"Host: {host_header}", "User-Agent: aistack-llm-benchmark/1", "Accept: */*"]
        if api_key:
            lines.append(f"Authorization: Bearer {api_key}")
        self.header_lines = "\r\n".join(lines)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def post_head(self, path: str) -> bytes:
        """Request head up to (excluding) the Content-Length value."""
        return (
            f"POST {self.prefix}{path} HTTP/1.1\r\n{self.header_lines}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode("latin-1")


def fetch_json(
    target: HttpTarget,
    path: str,
    api_key: str | None,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> Any:
    """Blocking GET of a JSON document (used for /v1/models before any load is sent)."""
    url = target.url(path)
    if target.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=ssl_context
        )
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    headers = {"Accept": "application/json", "User-Agent": "aistack-llm-benchmark/1"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        conn.request("GET", target.prefix + path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise EndpointError(f"cannot reach {url}: {exc}") from exc
    finally:
        conn.close()
    if resp.status >= 400:
        raise EndpointError(f"GET {url} returned HTTP {resp.status}: {_error_text(body)}")
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise EndpointError(f"GET {url} did not return JSON: {exc}") from exc


class _Conn(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    __slots__ = (
        "body",
        "buf",
        "chunks",
        "closed",
        "done_seen",
        "err",
        "first",
        "got_bytes",
        "keep_alive",
        "last",
        "pool",
        "remaining",
        "sse",
        "sse_buf",
        "state",
        "status",
        "timer",
        "transport",
        "usage_in",
        "usage_out",
        "waiter",
    )

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.sse_buf = bytearray()
        self.body = bytearray()
        self.state = _IDLE
        self.waiter: asyncio.Future[Result] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.remaining = 0
        self.first = 0.0
        self.last = 0.0
        self.chunks = 0
        self.usage_in = -1
        self.usage_out = -1
        self.done_seen = False
        self.keep_alive = True
        self.sse = False
        self.got_bytes = False
        self.err = ""

    # -- asyncio callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.state == _EOF:
            self._finish(perf_counter())
        elif self.waiter is not None and not self.waiter.done():
            why = f"connection lost: {exc}" if exc else "connection closed by server"
            self._fail(why if self.got_bytes else "RETRY:" + why)

    def data_received(self, data: bytes) -> None:
        now = perf_counter()
        self.got_bytes = True
        if self.state == _IDLE:
            return
        buf = self.buf
        buf += data
        try:
            self._parse(buf, now)
        except Exception as exc:  # malformed response: fail this request, drop the conn
            self._fail(f"malformed response: {exc}")

    def eof_received(self) -> bool | None:
        return None

    # -- request -----------------------------------------------------------------------
    def start(self, payload: bytes, waiter: asyncio.Future[Result], timeout: float) -> None:
        self._reset()
        self.buf.clear()
        self.sse_buf.clear()
        self.body.clear()
        self.state = _HEAD
        self.waiter = waiter
        self.timer = self.pool.loop.call_later(timeout, self._on_timeout, timeout)
        self.transport.write(payload)  # type: ignore[union-attr]  # set by connection_made

    def _on_timeout(self, timeout: float) -> None:
        self.timer = None
        self._fail(f"timeout after {timeout:g}s")

    def abort(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.state = _IDLE
        self.waiter = None
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, why: str) -> None:
        waiter = self.waiter
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_result(
                (
                    False,
                    self.status,
                    self.first,
                    self.last,
                    perf_counter(),
                    self.chunks,
                    self.usage_out,
                    self.usage_in,
                    why,
                )
            )

    def _finish(self, now: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.state = _IDLE
        waiter = self.waiter
        self.waiter = None
        if not self.keep_alive and not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        status = self.status
        err = ""
        if status >= 400 or status < 200:
            err = f"HTTP {status}: {_error_text(bytes(self.body))}"
        elif self.sse:
            if self.sse_buf.strip():
                self._sse_lines(now, final=True)
            if self.err:
                err = self.err
            elif not self.done_seen and self.chunks == 0 and self.usage_out < 0:
                err = "stream ended without any event"
        else:
            self._plain_body(now)
            err = self.err
        if waiter is not None and not waiter.done():
            waiter.set_result(
                (
                    not err,
                    status,
                    self.first,
                    self.last,
                    now,
                    self.chunks,
                    self.usage_out,
                    self.usage_in,
                    err,
                )
            )
        if not self.closed:
            self.pool.release(self)

    # -- parsing -----------------------------------------------------------------------
    def _parse(self, buf: bytearray, now: float) -> None:
        while True:
            state = self.state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._head(bytes(buf[:end]))
                del buf[: end + 4]
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
                del buf[: end + 2]
                if size == 0:
                    self.state = _CHUNK_TRAILER
                else:
                    self.remaining = size
                    self.state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                if not buf:
                    return
                take = min(len(buf), self.remaining)
                self._body(buf[:take], now)
                del buf[:take]
                self.remaining -= take
                if self.remaining:
                    return
                self.state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if len(buf) < 2:
                    return
                del buf[:2]
                self.state = _CHUNK_SIZE
            elif state == _CHUNK_TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                del buf[: end + 2]
                if end == 0:
                    self._finish(now)
                    return
            elif state == _LEN:
                if not buf:
                    if self.remaining == 0:
                        self._finish(now)
                    return
                take = min(len(buf), self.remaining)
                self._body(buf[:take], now)
                del buf[:take]
                self.remaining -= take
                if self.remaining == 0:
                    self._finish(now)
                    return
            elif state == _EOF:
                if buf:
                    self._body(bytes(buf), now)
                    buf.clear()
                return
            else:
                return

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ValueError(f"bad status line {lines[0][:80]!r}")
        self.status = int(parts[1])
        if parts[0] == b"HTTP/1.0":
            self.keep_alive = False
        length = -1
        chunked = False
        for line in lines[1:]:
            name, _sep, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"content-type":
                self.sse = b"text/event-stream" in value.lower()
            elif name == b"connection":
                v = value.strip().lower()
                if v == b"close":
                    self.keep_alive = False
                elif v == b"keep-alive":
                    self.keep_alive = True
        if 100 <= self.status < 200:  # interim response (e.g. 100 Continue): next head follows
            self.state = _HEAD
            return
        if self.status >= 400:
            self.sse = False
        if chunked:
            self.state = _CHUNK_SIZE
        elif length >= 0:
            self.remaining = length
            self.state = _LEN
        else:
            self.keep_alive = False
            self.state = _EOF

    def _body(self, data: bytes | bytearray, now: float) -> None:
        if self.sse:
            self.sse_buf += data
            self._sse_lines(now)
        else:
            self.body += data

    def _sse_lines(self, now: float, final: bool = False) -> None:
        sbuf = self.sse_buf
        start = 0
        while True:
            nl = sbuf.find(b"\n", start)
            if nl < 0:
                if final and start < len(sbuf):
                    nl = len(sbuf)
                else:
                    break
            line = sbuf[start:nl]
            start = nl + 1
            if line[:5] == b"data:":
                self._event(bytes(line[5:]).strip(), now)
        if start:
            del sbuf[:start]

    def _event(self, payload: bytes, now: float) -> None:
        if payload == b"[DONE]":
            self.done_seen = True
            return
        if not payload:
            return
        obj = json.loads(payload)
        if not isinstance(obj, dict):
            return
        if obj.get("error"):
            self.err = "stream error: " + _error_text(payload)
            return
        usage = obj.get("usage")
        if usage:
            self._usage(usage)
        for choice in obj.get("choices") or ():
            delta = choice.get("delta")
            if delta is not None:
                got = (
                    delta.get("content")
                    or delta.get("reasoning_content")
                    or delta.get("reasoning")
                    or delta.get("tool_calls")
                )
            else:
                got = choice.get("text")
            if got:
                self.chunks += 1
                if not self.first:
                    self.first = now
                self.last = now

    def _usage(self, usage: dict[str, Any]) -> None:
        out = usage.get("completion_tokens")
        if isinstance(out, int):
            self.usage_out = out
        inp = usage.get("prompt_tokens")
        if isinstance(inp, int):
            self.usage_in = inp

    def _plain_body(self, now: float) -> None:
        """Non-streaming JSON answer: the whole text arrives at once."""
        try:
            obj = json.loads(bytes(self.body) or b"null")
        except ValueError as exc:
            self.err = f"response is not JSON: {exc}"
            return
        if not isinstance(obj, dict):
            self.err = "response is not a JSON object"
            return
        if obj.get("error"):
            self.err = "error: " + _error_text(bytes(self.body))
            return
        if obj.get("usage"):
            self._usage(obj["usage"])
        text = ""
        for choice in obj.get("choices") or ():
            msg = choice.get("message")
            text += (msg.get("content") or "") if isinstance(msg, dict) else choice.get("text", "")
        self.chunks = 1 if text else 0
        self.first = self.last = now


def _error_text(body: bytes) -> str:
    try:
        obj = json.loads(body)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        if isinstance(err, dict):
            err = err.get("message", err)
        text = str(err)
    except ValueError:
        text = body.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:200] if text else "(empty body)"


class Pool:
    """Keep-alive connection pool; grows on demand, one request per connection at a time."""

    def __init__(
        self,
        target: HttpTarget,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.ssl = ssl_context if target.scheme == "https" else None
        self.loop = asyncio.get_running_loop()
        self.idle: list[_Conn] = []
        self.all: set[_Conn] = set()
        self.opened = 0

    def release(self, conn: _Conn) -> None:
        self.idle.append(conn)

    async def _connect(self) -> _Conn:
        factory: Callable[[], _Conn] = lambda: _Conn(self)  # noqa: E731
        _transport, conn = await asyncio.wait_for(
            self.loop.create_connection(
                factory,
                self.target.host,
                self.target.port,
                ssl=self.ssl,
                server_hostname=self.target.host if self.ssl else None,
            ),
            self.connect_timeout,
        )
        self.opened += 1
        self.all.add(conn)
        return conn

    async def request(self, payload: bytes) -> Result:
        """Send one pre-encoded request; never raises except CancelledError."""
        for attempt in (0, 1):
            conn = None
            while self.idle:
                cand = self.idle.pop()
                if (
                    not cand.closed
                    and cand.transport is not None
                    and not cand.transport.is_closing()
                ):
                    conn = cand
                    break
                self.all.discard(cand)
            reused = conn is not None
            if conn is None:
                try:
                    conn = await self._connect()
                except asyncio.CancelledError:
                    raise
                except (TimeoutError, OSError, ssl.SSLError) as exc:
                    now = perf_counter()
                    msg = f"connect to {self.target.host}:{self.target.port} failed: {exc!s}"
                    if isinstance(exc, asyncio.TimeoutError):
                        msg = f"connect to {self.target.host}:{self.target.port} timed out"
                    return (False, 0, 0.0, 0.0, now, 0, -1, -1, msg)
            waiter: asyncio.Future[Result] = self.loop.create_future()
            conn.start(payload, waiter, self.timeout)
            try:
                res = await waiter
            except asyncio.CancelledError:
                conn.abort()
                self.all.discard(conn)
                raise
            if not res[0]:
                self.all.discard(conn)
                if res[8].startswith("RETRY:"):
                    # a reused keep-alive connection the server had closed: retry once, fresh
                    if reused and attempt == 0:
                        continue
                    res = (*res[:8], res[8][6:])
            return res
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in list(self.all):
            conn.abort()
        self.all.clear()
        self.idle.clear()
