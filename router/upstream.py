"""The upstream client: a keep-alive connection pool to engines over raw asyncio + httptools.

`UpstreamPool.request(base_url, method, path, body)` returns an `UpstreamResponse` once the
engine's status line and headers are in; its body is then read whole (`read`) or chunk by
chunk as it arrives (`next_chunk`). The caller must `release()` it: a fully read response on
a keep-alive connection goes back to the pool, anything else is closed (which is how a
cancelled request stops the engine's work). A pooled connection the engine closed while
idle is retried once on a fresh one, transparently.

Errors carry whether the engine had begun answering (`UpstreamError.started`), so the
proxy knows what it may retry elsewhere. The proxy depends on the `Upstream` Protocol only;
tests may inject any object with the same `request` method.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module
from collections import deque
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import httptools

_READ_HIGH_WATER = 64  # buffered chunks before the engine socket stops being read


class UpstreamError(Exception):
    """The engine could not be reached or broke the exchange."""

    def __init__(self, message: str, *, engine: str, started: bool) -> None:
        super().__init__(message)
        self.engine = engine
        self.started = started  # the engine had begun answering


class UpstreamConnectError(UpstreamError):
    """No connection could be opened (refused, unreachable, connect timeout)."""


class UpstreamTimeout(UpstreamError):
    """The engine did not answer (or send the next chunk) within the read timeout."""


class UpstreamResponse(Protocol):
    status: int
    content_type: bytes

    async def read(self) -> bytes: ...

    async def next_chunk(self) -> bytes | None: ...

    def pipe(self, sink: Callable[[bytes], None]) -> None: ...

    async def piped(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def release(self) -> None: ...


class Upstream(Protocol):
    async def request(self, base_url: str, method: str, path: str, body: bytes = b"",
                      *, timeout: float | None = None) -> UpstreamResponse: ...

    async def close(self) -> None: ...


class _Connection(asyncio.Protocol):
    """One engine connection; also the response object of the request it carries."""

    def __init__(self, pool: UpstreamPool, key: str) -> None:
        self._pool = pool
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
            self._pool._put(self._key, self)
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


class _Target:
    __slots__ = ("host", "port", "ssl", "host_header")

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.ssl = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.ssl else 80)
        self.host_header = parts.netloc.encode()


class UpstreamPool:
    """Keep-alive connections per engine base URL; implements `Upstream`."""

    def __init__(self, *, connect_timeout: float = 2.0, read_timeout: float | None = 600.0,
                 max_idle_per_engine: int = 512) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle_per_engine
        self._idle: dict[str, list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._ssl: ssl_module.SSLContext | None = None

    async def request(self, base_url: str, method: str, path: str, body: bytes = b"",
                      *, timeout: float | None = None) -> _Connection:
        """Send one request; returns once the response head is in."""
        target = self._targets.get(base_url) or self._target(base_url)
        data = _encode(method, path, target.host_header, body)
        read_timeout = timeout if timeout is not None else self.read_timeout
        conn = self._take(base_url)
        if conn is not None:
            conn.send(data, read_timeout)
            try:
                await conn.head()
                return conn
            except UpstreamError as exc:
                conn.close()
                if exc.started or isinstance(exc, UpstreamTimeout):
                    raise
            except BaseException:
                conn.close()
                raise
        conn = await self._connect(base_url, target)
        conn.send(data, read_timeout)
        try:
            await conn.head()
        except BaseException:
            conn.close()
            raise
        return conn

    def _target(self, base_url: str) -> _Target:
        target = self._targets[base_url] = _Target(base_url)
        return target

    def _take(self, key: str) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def _put(self, key: str, conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, key: str, target: _Target) -> _Connection:
        loop = asyncio.get_running_loop()
        ssl_ctx = self._ssl_context() if target.ssl else None
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self, key), target.host, target.port, ssl=ssl_ctx),
                self.connect_timeout)
        except (TimeoutError, OSError) as exc:
            raise UpstreamConnectError(f"cannot connect: {exc or type(exc).__name__}", engine=key,
                                       started=False) from exc
        return conn

    def _ssl_context(self) -> ssl_module.SSLContext:
        if self._ssl is None:
            self._ssl = ssl_module.create_default_context()
        return self._ssl

    def drop(self, base_url: str) -> None:
        """Close the idle connections to one engine (it left, or it failed)."""
        for conn in self._idle.pop(base_url, []):
            conn.close()

    async def close(self) -> None:
        for key in list(self._idle):
            self.drop(key)


def _encode(method: str, path: str, host: bytes, body: bytes) -> bytes:
    head = b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method.encode(), path.encode(), host)
    if body or method == "POST":
        return b"%scontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (head, len(body), body)
    return head + b"\r\n"
