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
import ssl as ssl_module
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from router._upstream_conn import UpstreamConnection
from router.errors import UpstreamConnectError, UpstreamError, UpstreamTimeout

__all__ = ["Upstream", "UpstreamConnectError", "UpstreamError", "UpstreamPool", "UpstreamResponse",
           "UpstreamTimeout"]


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
                      *, timeout: float | None = None, headers: bytes = b"") -> UpstreamResponse: ...

    async def close(self) -> None: ...


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
        self._idle: dict[str, list[UpstreamConnection]] = {}
        self._targets: dict[str, _Target] = {}
        self._ssl: ssl_module.SSLContext | None = None

    async def request(self, base_url: str, method: str, path: str, body: bytes = b"",
                      *, timeout: float | None = None, headers: bytes = b"") -> UpstreamConnection:
        """Send one request (`headers`: extra header lines, each ending in CRLF); returns once
        the response head is in."""
        target = self._targets.get(base_url) or self._target(base_url)
        data = _encode(method, path, target.host_header, body, headers)
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

    def _take(self, key: str) -> UpstreamConnection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def _put(self, key: str, conn: UpstreamConnection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, key: str, target: _Target) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        ssl_ctx = self._ssl_context() if target.ssl else None
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(
                lambda: UpstreamConnection(key, self._put), target.host, target.port, ssl=ssl_ctx),
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


def _encode(method: str, path: str, host: bytes, body: bytes, headers: bytes = b"") -> bytes:
    head = b"%s %s HTTP/1.1\r\nhost: %s\r\n%s" % (method.encode(), path.encode(), host, headers)
    if body or method == "POST":
        return b"%scontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (head, len(body), body)
    return head + b"\r\n"
