"""One keep-alive connection to an engine, which is also the response object of the request
it carries (status, content type, body pieces), parsed with `httptools`.

Body pieces are buffered and read by `next_chunk` / `read`, or, on the streaming fast path,
handed to a sink once per network read (`pipe` / `piped`). `release` returns the connection
to its pool through a callback when the exchange finished cleanly, else closes it.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable

import httptools

from router.errors import UpstreamError, UpstreamTimeout

_READ_HIGH_WATER = 64  # buffered chunks before the engine socket stops being read


class UpstreamConnection(asyncio.Protocol):
    """One engine connection; also the response object of the request it carries."""

    def __init__(self, key: str, on_reusable: Callable[[str, UpstreamConnection], None]) -> None:
        self._on_reusable = on_reusable
        self._key = key
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.content_type = b""
        self.head_done = False
        self.done = False
        self.got_bytes = False
        self.chunks: deque[bytes] = deque()
        self.keep_alive = True
        self.timeout: float | None = None
        self._reading_paused = False
        self._sink: Callable[[bytes], None] | None = None
        self.pieces = 0  # network reads handed to the sink

    # --- transport callbacks ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.keep_alive = False
            self._transport.close()  # type: ignore[union-attr]
            return
        if self._sink is not None and self.chunks:
            self._flush()

    def _flush(self) -> None:
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.pieces += 1
        self._sink(data)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    # --- parser callbacks ---------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        if self._sink is not None:
            return  # handed over once per network read, in data_received
        if len(self.chunks) >= _READ_HIGH_WATER:
            self.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        self.done = True
        self._wake()

    # --- waiting ------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, what: str) -> None:
        if self.closed:
            raise UpstreamError(f"engine closed the connection before {what}", engine=self._key,
                                started=self.got_bytes)
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(self.timeout, _expire, waiter) if self.timeout else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if waiter.result() is _TIMED_OUT:
            raise UpstreamTimeout(f"engine sent no {what} within {self.timeout} s", engine=self._key,
                                  started=self.got_bytes)

    # --- the response API ---------------------------------------------------------------
    def send(self, data: bytes, timeout: float | None) -> None:
        self._reset()
        self.timeout = timeout
        self._transport.write(data)  # type: ignore[union-attr]

    async def head(self) -> None:
        while not self.head_done:
            await self._wait("a response")

    async def next_chunk(self) -> bytes | None:
        """The next body piece as the engine sent it; None at the end of the body."""
        while not self.chunks:
            if self.done:
                return None
            await self._wait("the next chunk")
        if self._reading_paused and len(self.chunks) <= 1:
            self.resume_reading()
        return self.chunks.popleft()

    def pipe(self, sink: Callable[[bytes], None]) -> None:
        """Hand the rest of the body to `sink` as it arrives, one call per network read, with
        no task wake-up in between (the streaming fast path); then await `piped()`."""
        self._sink = sink
        if self.chunks:
            self._flush()
        self.resume_reading()

    async def piped(self) -> None:
        """Until the whole body has gone to the sink. Raises `UpstreamError` if the engine
        breaks the stream, `UpstreamTimeout` after `timeout` seconds without data."""
        while not self.done:
            seen = self.pieces
            try:
                await self._wait("the next chunk")
            except UpstreamTimeout:
                if self.pieces == seen and not self._reading_paused:
                    raise

    def pause_reading(self) -> None:
        """Stop reading the engine's socket (the client reads slower than the engine writes)."""
        if not self._reading_paused and not self.closed:
            self._reading_paused = True
            self._transport.pause_reading()  # type: ignore[union-attr]

    def resume_reading(self) -> None:
        if self._reading_paused and not self.closed:
            self._reading_paused = False
            self._transport.resume_reading()  # type: ignore[union-attr]

    async def read(self) -> bytes:
        """The whole body."""
        while not self.done:
            await self._wait("the response body")
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data

    def release(self) -> None:
        """Back to the pool when the exchange finished cleanly, else closed."""
        if self.done and self.keep_alive and not self.closed and not self.chunks:
            self._on_reusable(self._key, self)
        else:
            self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


_TIMED_OUT = object()


def _expire(waiter: asyncio.Future[object]) -> None:
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)
