"""The hand-written HTTP/1.1 + SSE client against a scripted asyncio server."""

from __future__ import annotations

import asyncio
import json
from time import perf_counter

import pytest

from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.client import (
    HttpTarget,
    Pool,
)


def sse(obj) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def delta(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


HEAD_SSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


async def _handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = json.loads(await reader.readexactly(length))
            mode = body.get("mode")
            if mode == "stream":
                writer.write(HEAD_SSE)
                await asyncio.sleep(0.05)
                events = [sse(delta("a")), sse(delta(" b")), sse(delta("c"))]
                events += [
                    sse({"choices": [], "usage": {"completion_tokens": 3, "prompt_tokens": 9}}),
                    sse(b"[DONE]"),
                ]
                data = b"".join(events)
                # split the body at awkward places: inside 'data:' and inside the CRLF
                writer.write(chunk(data[:7]))
                await writer.drain()
                await asyncio.sleep(0.02)
                writer.write(chunk(data[7:90])[:-1])
                await writer.drain()
                await asyncio.sleep(0.02)
                writer.write(b"\n" + chunk(data[90:]) + b"0\r\n\r\n")
            elif mode == "crlf_no_usage":
                writer.write(HEAD_SSE)
                data = (
                    b"".join(
                        b"data: " + json.dumps(delta(t)).encode() + b"\r\n\r\n" for t in "xyzw"
                    )
                    + b"data: [DONE]\r\n\r\n"
                )
                writer.write(chunk(data) + b"0\r\n\r\n")
            elif mode == "json":
                out = json.dumps(
                    {
                        "choices": [{"message": {"content": "hi there"}}],
                        "usage": {"completion_tokens": 2, "prompt_tokens": 4},
                    }
                ).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(out), out)
                )
            elif mode == "error":
                out = json.dumps({"error": {"message": "model overloaded"}}).encode()
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json"
                    b"\r\ncontent-length: %d\r\n\r\n%s" % (len(out), out)
                )
            elif mode == "cut":
                writer.write(HEAD_SSE + chunk(sse(delta("a"))))
                await writer.drain()
                writer.close()
                return
            elif mode == "eof_body":
                out = json.dumps({"choices": [{"text": "done"}]}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"connection: close\r\n\r\n" + out
                )
                await writer.drain()
                writer.close()
                return
            elif mode == "close_after":
                out = b'{"choices": [{"text": "ok"}]}'
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(out), out))
                await writer.drain()
                writer.close()  # keep-alive advertised, but the server drops the connection
                return
            elif mode == "slow":
                await asyncio.sleep(5)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def payload(target: HttpTarget, mode: str) -> bytes:
    body = json.dumps({"mode": mode}).encode()
    return target.post_head("/v1/chat/completions") + b"%d\r\n\r\n%s" % (len(body), body)


def run(coro_fn, timeout: float = 3.0):
    async def main():
        server = await asyncio.start_server(_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        target = HttpTarget(f"http://127.0.0.1:{port}", api_key="k")
        pool = Pool(target, timeout)
        try:
            return await coro_fn(pool, target)
        finally:
            pool.close()
            await asyncio.sleep(0.02)  # let the handlers see EOF before the server goes
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


def test_stream_split_events_usage_and_timing():
    async def go(pool, target):
        t0 = perf_counter()
        res = await pool.request(payload(target, "stream"))
        return t0, res

    t0, (ok, status, first, last, end, chunks, out, inp, err) = run(go)
    assert (ok, status, err) == (True, 200, "")
    assert chunks == 3 and out == 3 and inp == 9
    assert first - t0 >= 0.045  # first token after the 50 ms "TTFT"
    assert last - first >= 0.015  # last content event arrived in a later write
    assert end >= last


def test_crlf_events_without_usage_counts_chunks():
    res = run(lambda pool, t: pool.request(payload(t, "crlf_no_usage")))
    assert res[0] and res[5] == 4 and res[6] == -1


def test_non_stream_json():
    ok, _status, first, last, end, chunks, out, inp, _err = run(
        lambda pool, t: pool.request(payload(t, "json"))
    )
    assert ok and chunks == 1 and out == 2 and inp == 4 and first == last == end


def test_http_error_is_errored_with_message():
    res = run(lambda pool, t: pool.request(payload(t, "error")))
    assert not res[0] and res[1] == 503
    assert res[8] == "HTTP 503: model overloaded"


def test_connection_cut_mid_stream_is_errored():
    res = run(lambda pool, t: pool.request(payload(t, "cut")))
    assert not res[0] and "connection" in res[8]


def test_eof_delimited_body():
    res = run(lambda pool, t: pool.request(payload(t, "eof_body")))
    assert res[0] and res[5] == 1


def test_keep_alive_reuse_and_retry_after_server_close():
    async def go(pool, target):
        a = await pool.request(payload(target, "json"))
        b = await pool.request(payload(target, "json"))
        assert pool.opened == 1  # the same connection served both
        c = await pool.request(payload(target, "close_after"))
        await asyncio.sleep(0.05)
        d = await pool.request(payload(target, "json"))  # stale conn dropped: fresh one
        return a, b, c, d, pool.opened

    a, b, c, d, opened = run(go)
    assert all(r[0] for r in (a, b, c, d))
    assert opened == 2


def test_timeout():
    res = run(lambda pool, t: pool.request(payload(t, "slow")), timeout=0.2)
    assert not res[0] and res[8] == "timeout after 0.2s"


def test_connect_refused():
    async def go():
        target = HttpTarget("http://127.0.0.1:9")
        pool = Pool(target, 1.0)
        return await pool.request(payload(target, "json"))

    res = asyncio.run(go())
    assert not res[0] and "connect to 127.0.0.1:9 failed" in res[8]


@pytest.mark.parametrize(
    ("url", "host", "port", "prefix"),
    [
        ("http://h:8000", "h", 8000, ""),
        ("https://h/v1/", "h", 443, "/v1"),
        ("http://h/serving/llm", "h", 80, "/serving/llm"),
    ],
)
def test_target(url, host, port, prefix):
    t = HttpTarget(url, "tok")
    assert (t.host, t.port, t.prefix) == (host, port, prefix)
    assert b"Authorization: Bearer tok" in t.post_head("/x")
    assert t.post_head("/x").startswith(f"POST {prefix}/x HTTP/1.1".encode())


def _self_signed(tmp_path):
    """A throw-away CA-less self-signed certificate for 127.0.0.1 (tests/tls.py)."""
    pytest.importorskip("cryptography.x509")
    from tests.tls import self_signed

    cert, key = self_signed(tmp_path)
    return str(cert), str(key)


def test_https_with_ca_path_and_validate_certs(tmp_path):
    import ssl

    from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.client import (
        make_ssl_context,
    )

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)

    async def main(client_ctx):
        server = await asyncio.start_server(_handler, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        target = HttpTarget(f"https://127.0.0.1:{port}")
        pool = Pool(target, 3.0, client_ctx)
        try:
            return await pool.request(payload(target, "stream"))
        finally:
            pool.close()
            await asyncio.sleep(0.02)
            server.close()
            await server.wait_closed()

    ok = asyncio.run(main(make_ssl_context(True, cert)))
    assert ok[0] and ok[5] == 3
    insecure = asyncio.run(main(make_ssl_context(False)))
    assert insecure[0]
    refused = asyncio.run(main(make_ssl_context(True)))  # system CAs do not know this cert
    assert not refused[0] and "CERTIFICATE_VERIFY_FAILED" in refused[8]
