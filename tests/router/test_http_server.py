"""The lean HTTP/1.1 server at the byte level: keep-alive, pipelining, Expect, limits, bad bytes."""

from __future__ import annotations

import asyncio

import orjson

from router.contracts import PATH_COMPLETIONS
from router.http_server import Request, Responder, bound_port, start_server
from tests.router.fake_engine import FakeEngine
from tests.router.harness import run, running, settings_for

BODY = orjson.dumps({"model": "m", "prompt": "hi"})


def _post(extra: bytes = b"", body: bytes = BODY) -> bytes:
    return (b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
            % (PATH_COMPLETIONS.encode(), len(body), extra, body))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    return status, await reader.readexactly(length)


async def _with_router(check):  # type: ignore[no-untyped-def]
    engine = FakeEngine(name="e")
    await engine.start()
    async with running(settings_for([engine.url])) as (_, url):
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        try:
            await check(reader, writer)
        finally:
            writer.close()
    await engine.stop()
    return engine


def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    """Three requests written at once come back as three answers, in order, on one connection."""
    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_post() + b"GET /nope HTTP/1.1\r\nhost: x\r\n\r\n" + _post())
        answers = [await _read_response(reader) for _ in range(3)]
        assert [status for status, _ in answers] == [200, 404, 200]
        assert orjson.loads(answers[2][1])["engine"] == "e"
    engine = run(_with_router(check))
    assert engine.requests == 2


def test_expect_100_continue_is_answered_before_the_body() -> None:
    """A client that waits for `100 Continue` (as curl does for big bodies) gets it at once."""
    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = _post(b"expect: 100-continue\r\n")
        head, body = request.split(b"\r\n\r\n", 1)
        writer.write(head + b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        assert (await _read_response(reader))[0] == 200
    run(_with_router(check))


def test_oversized_headers_and_garbage_get_400_and_a_closed_connection() -> None:
    """Headers over 64 KiB, or bytes that are not HTTP, are a 400 JSON error, then EOF."""
    for raw in (_post(b"x-big: " + b"a" * 70_000 + b"\r\n"), b"\x16\x03\x01 not http\r\n\r\n"):
        async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes = raw) -> None:
            writer.write(raw)
            status, body = await _read_response(reader)
            assert status == 400 and orjson.loads(body)["error"]["message"]
            assert await reader.read() == b""
        engine = run(_with_router(check))
        assert engine.requests == 0


def test_connection_close_is_honoured() -> None:
    """A request with `connection: close` is answered, then the router closes the connection."""
    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_post(b"connection: close\r\n"))
        assert (await _read_response(reader))[0] == 200
        assert await reader.read() == b""
    run(_with_router(check))


def test_idle_and_dribbling_connections_are_closed() -> None:
    """A connection that sends nothing, or never finishes its request, is closed after the idle
    timeout; one that finished a request gets the same grace for the next."""
    async def handler(request: Request, responder: Responder) -> None:
        responder.send(200, b"{}")

    async def body() -> None:
        server = await start_server(handler, host="127.0.0.1", port=0, max_body_bytes=100, idle_timeout=0.2)
        port = bound_port(server)
        for first in (b"", b"GET /x HTTP/1.1\r\nhost:", b"GET /x HTTP/1.1\r\nhost: x\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(first)
            rest = await asyncio.wait_for(reader.read(), 5)  # EOF: the server closed it
            assert rest.startswith(b"HTTP/1.1 200") == first.endswith(b"\r\n\r\n")
            writer.close()
        server.close()
    run(body())
