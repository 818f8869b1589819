"""The upstream client: one aiohttp `ClientSession` for every call the router makes to engines
(proxied requests, health checks, metric scrapes).

`UpstreamPool.request(base_url, method, path, body)` returns an `UpstreamResponse` once the
engine's status line and headers are in; its body is then read whole (`read`) or piece by
piece as it arrives (`next_chunk`). The caller must `release()` it: a fully read response
returns its connection to the pool, anything else closes it (which is how a cancelled
request stops the engine's work).

aiohttp pools connections per (host, port, TLS) key, so per engine; it sets TCP_NODELAY on
every connection it opens (`aiohttp/client_proto.py`, `ResponseHandler.connection_made`),
and the router's server side (uvicorn) does the same for clients. Idle pooled connections
are dropped after `keepalive_s` (4 s by default), below the 5 s keep-alive of vLLM's uvicorn
server (`TIMEOUT_KEEP_ALIVE` in vllm/entrypoints/openai/api_server.py), so the router does not
reuse a connection the engine is about to close.

Errors carry whether the engine had begun answering (`UpstreamError.started`), so the proxy
knows what it may retry elsewhere. The proxy depends on the `Upstream` Protocol only; tests
may inject any object with the same `request` method.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import aiohttp

from router.shell.errors import UpstreamConnectError, UpstreamError, UpstreamTimeout

__all__ = ["HOP_BY_HOP", "Upstream", "UpstreamConnectError", "UpstreamError", "UpstreamPool",
           "UpstreamResponse", "UpstreamTimeout"]

# RFC 9110 §7.6.1 connection-specific fields, plus the framing fields the router's server
# writes itself (length, encoding) and the fields it sets on its own answers (date, server).
HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
                        b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade",
                        b"content-length", b"date", b"server"))
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError,) + (
    (aiohttp.ConnectionTimeoutError,) if hasattr(aiohttp, "ConnectionTimeoutError") else ())


# Headers aiohttp would add to every request and the engines do not need: each costs work per
# request, and `Accept-Encoding` would invite a compressed answer the router relays as is.
_SKIPPED_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding")


class UpstreamResponse(Protocol):
    status: int
    content_type: bytes
    headers: list[tuple[bytes, bytes]]  # the engine's headers a client may need (lower-case names)

    async def read(self) -> bytes: ...

    async def next_chunk(self) -> bytes | None: ...

    def release(self) -> None: ...


class Upstream(Protocol):
    async def request(self, base_url: str, method: str, path: str, body: bytes = b"",
                      *, timeout: float | None = None,
                      headers: Mapping[str, str] | None = None) -> UpstreamResponse: ...

    async def close(self) -> None: ...


class _Response:
    """One engine answer over aiohttp; implements `UpstreamResponse`."""

    __slots__ = ("_resp", "_engine", "status", "content_type", "headers")

    def __init__(self, resp: aiohttp.ClientResponse, engine: str) -> None:
        self._resp = resp
        self._engine = engine
        self.status = resp.status
        self.content_type = resp.headers.get("Content-Type", "").encode("latin-1")
        self.headers = relayed_headers(resp.raw_headers)

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, self._engine, started=True) from exc

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body as it arrives; None at its end."""
        try:
            data = await self._resp.content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, self._engine, started=True) from exc
        return data or None

    def release(self) -> None:
        """Pool the connection when the body was read to its end, else close it."""
        if self._resp.content.at_eof():
            self._resp.release()
        else:
            self._resp.close()


def relayed_headers(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """The engine's response headers minus hop-by-hop and framing ones, names lower-cased."""
    out = []
    for name, value in raw:
        lower = name.lower()
        if lower not in HOP_BY_HOP:
            out.append((lower, value))
    return out


def _translate(exc: BaseException, engine: str, *, started: bool) -> UpstreamError:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, _CONNECT_ERRORS):
        return UpstreamConnectError(f"cannot connect: {text}", engine=engine, started=False)
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"engine sent nothing in time: {text}", engine=engine, started=started)
    return UpstreamError(f"engine broke the exchange: {text}", engine=engine, started=started)


class UpstreamPool:
    """Keep-alive connections per engine over one aiohttp session; implements `Upstream`."""

    def __init__(self, *, connect_timeout: float = 2.0, read_timeout: float | None = 600.0,
                 keepalive_s: float = 4.0) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive_s = keepalive_s
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                              sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running loop."""
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=self.keepalive_s)
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            timeout=self._timeout, skip_auto_headers=_SKIPPED_AUTO_HEADERS, trust_env=False)
        return self._session

    async def request(self, base_url: str, method: str, path: str, body: bytes = b"",
                      *, timeout: float | None = None,
                      headers: Mapping[str, str] | None = None) -> _Response:
        """Send one request; returns once the response head is in. `timeout` bounds the whole
        exchange (health checks, scrapes); without it, connect and per-read timeouts apply."""
        session = self._session or self._open()
        kwargs = {} if timeout is None else {"timeout": aiohttp.ClientTimeout(total=timeout)}
        try:
            resp = await session.request(method, base_url + path, data=body if body else None,
                                         headers=headers, allow_redirects=False, **kwargs)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, base_url, started=False) from exc
        return _Response(resp, base_url)

    def drop(self, base_url: str) -> None:
        """An engine left; aiohttp closes its idle connections when they expire."""

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            await asyncio.sleep(0)  # let aiohttp's transports finish closing
