"""The router's HTTP shell (uvicorn + httptools) at the byte level: pipelining, Expect,
limits, bad bytes, HTTP/1.0, and which engine headers reach the client."""

from __future__ import annotations

import asyncio

import orjson

from contracts import PATH_COMPLETIONS
from tests.router.fake_engine import FakeEngine
from tests.router.harness import run, running, settings_for

BODY = orjson.dumps({"model": "m", "prompt": "hi"})
STREAM_BODY = orjson.dumps({"model": "m", "prompt": "hi", "stream": True})


def _post(extra: bytes = b"", body: bytes = BODY, version: bytes = b"1.1") -> bytes:
    return (b"POST %s HTTP/%s\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
            % (PATH_COMPLETIONS.encode(), version, len(body), extra, body))


def _headers(head: bytes) -> dict[bytes, bytes]:
    lines = head.split(b"\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines if ln)}


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    headers = _headers(head)
    return int(head.split(b" ", 2)[1]), headers, await reader.readexactly(int(headers[b"content-length"]))


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
        assert [status for status, _, _ in answers] == [200, 404, 200]
        assert orjson.loads(answers[1][2])["error"]["code"] == 404
        assert orjson.loads(answers[2][2])["engine"] == "e"
    engine = run(_with_router(check))
    assert engine.requests == 2


def test_expect_100_continue_is_answered_before_the_body() -> None:
    """A client that waits for `100 Continue` (as curl does for big bodies) gets it at once."""
    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = _post(b"expect: 100-continue\r\n").split(b"\r\n\r\n", 1)
        writer.write(head + b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        assert (await _read_response(reader))[0] == 200
    run(_with_router(check))


def test_oversized_headers_get_431_and_garbage_400_json_then_a_closed_connection() -> None:
    """Headers over 64 KiB are a 431 naming the limit (RFC 6585), bytes that are not HTTP a
    400, both JSON errors, then EOF."""
    for raw, want in ((_post(b"x-big: " + b"a" * 70_000 + b"\r\n"), 431),
                      (b"\x16\x03\x01 not http\r\n\r\n", 400)):
        async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes = raw,
                        want: int = want) -> None:
            writer.write(raw)
            status, headers, body = await _read_response(reader)
            assert status == want and headers[b"content-type"] == b"application/json"
            error = orjson.loads(body)["error"]
            assert error["code"] == want and (want == 400 or "65536 bytes" in error["message"])
            assert await reader.read() == b""
        engine = run(_with_router(check))
        assert engine.requests == 0


def test_a_body_trickled_past_the_body_timeout_gets_408_and_is_dropped(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A body sent a byte at a time (each byte resetting nothing) is cut off at the body timeout
    with a 408 JSON error and a closed connection; nothing reaches the engine."""
    from router.shell import server
    monkeypatch.setattr(server, "BODY_TIMEOUT_S", 0.3)

    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = _post().split(b"\r\n\r\n", 1)
        writer.write(head + b"\r\n\r\n")
        answer = asyncio.ensure_future(_read_response(reader))
        for byte in body[:-1]:  # never the last byte; stop when the router answers
            if answer.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        status, _, error = await asyncio.wait_for(answer, 5)
        assert status == 408 and orjson.loads(error)["error"]["code"] == 408
        assert await asyncio.wait_for(reader.read(), 5) == b""
    assert run(_with_router(check)).requests == 0

    async def in_time(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = _post().split(b"\r\n\r\n", 1)
        writer.write(head + b"\r\n\r\n")
        await asyncio.sleep(0.1)
        writer.write(body)
        assert (await _read_response(reader))[0] == 200
    assert run(_with_router(in_time)).requests == 1


def test_connection_close_is_honoured() -> None:
    """A request with `connection: close` is answered, then the router closes the connection."""
    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_post(b"connection: close\r\n"))
        assert (await _read_response(reader))[0] == 200
        assert await reader.read() == b""
    run(_with_router(check))


def test_an_http10_client_gets_a_stream_without_chunked_framing() -> None:
    """HTTP/1.0 has no chunked transfer coding: a streamed answer comes whole, with a length,
    and the connection closes after it."""
    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_post(body=STREAM_BODY, version=b"1.0"))
        status, headers, body = await _read_response(reader)
        assert status == 200 and b"transfer-encoding" not in headers
        assert headers[b"content-type"].startswith(b"text/event-stream")
        assert body.count(b"data: ") == 4 and body.endswith(b"data: [DONE]\n\n")
        assert await reader.read() == b""
    run(_with_router(check))


def test_engine_headers_are_relayed_but_hop_by_hop_ones_are_not() -> None:
    """An engine's own header reaches the client; its `keep-alive` (hop-by-hop) does not."""
    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_post())
        status, headers, _ = await _read_response(reader)
        assert status == 200
        assert headers[b"x-engine-request-id"] == b"cmpl-fake"
        assert b"keep-alive" not in headers
    run(_with_router(check))


def test_a_client_that_never_finishes_its_head_is_disconnected(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A slowloris client (request head trickling in, never complete) is dropped after the
    head timeout, while a client that finishes its head in time is answered."""
    from router.shell import server
    monkeypatch.setattr(server, "HEAD_TIMEOUT_S", 0.3)

    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\n")
        for _ in range(50):  # one header line at a time, never the blank line that ends the head
            if reader.at_eof():
                break
            writer.write(b"x-slow: 1\r\n")
            await asyncio.sleep(0.05)
        assert await asyncio.wait_for(reader.read(), 5) == b""
    run(_with_router(check))

    async def in_time(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_post())
        assert (await _read_response(reader))[0] == 200
    assert run(_with_router(in_time)).requests == 1

    async def second_request_trickles(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_post())  # answered; then the next request on the same connection stalls
        assert (await _read_response(reader))[0] == 200
        await check(reader, writer)
    assert run(_with_router(second_request_trickles)).requests == 1
