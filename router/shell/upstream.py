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

Proxied requests (no whole-exchange timeout, a body) skip `ClientSession.request`'s per-call
set-up (redirects, cookies, proxies, tracing, auth, header merging: about 6 % of the router's
instructions per request, measured with callgrind, benchmarks/RESULTS.md) and run the same
steps it runs for them, on the same session and connector: build a `ClientRequest`, take a
pooled connection from the connector, set the protocol's response parameters, `send`,
`start`. Those are aiohttp's own objects and framing, used below its session API, so the
lean path is taken only on the aiohttp minor version it was written against (`LEAN_AIOHTTP`;
the router image pins it); elsewhere every request goes through `ClientSession.request`.

Errors carry whether the engine had begun answering (`UpstreamError.started`), so the proxy
knows what it may retry elsewhere. The proxy depends on the `Upstream` Protocol only; tests
may inject any object with the same `request` method.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import aiohttp
from aiohttp.client_reqrep import ClientRequest, ClientResponse
from aiohttp.helpers import TimerNoop
from yarl import URL

from router.shell.errors import UpstreamConnectError, UpstreamError, UpstreamTimeout

__all__ = ["BASE_HEADERS", "HOP_BY_HOP", "Upstream", "UpstreamConnectError", "UpstreamError", "UpstreamPool",
           "UpstreamResponse", "UpstreamTimeout"]

# RFC 9110 §7.6.1 connection-specific fields, plus the framing fields the router's server
# writes itself (length, encoding) and the fields it sets on its own answers (date, server).
HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
                        b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade",
                        b"content-length", b"date", b"server"))
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError,) + (
    (aiohttp.ConnectionTimeoutError,) if hasattr(aiohttp, "ConnectionTimeoutError") else ())


# Sent on every request to an engine, in place of the ones aiohttp adds when a request lacks
# them (its `Accept-Encoding: gzip, deflate` would invite a compressed answer that the router
# relays as is). Naming them costs aiohttp less per request than `skip_auto_headers`, which
# rebuilds a header multidict each time.
BASE_HEADERS = {"user-agent": "llm-stack-router", "accept": "*/*", "accept-encoding": "identity"}


# The aiohttp minor version whose internals the lean path follows (aiohttp/client.py,
# `ClientSession._request` and its `_connect_and_send_request`).
LEAN_AIOHTTP = "3.14."
_LEAN_OK = aiohttp.__version__.startswith(LEAN_AIOHTTP)


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
                 keepalive_s: float = 4.0, lean: bool = True) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive_s = keepalive_s
        self.lean = lean and _LEAN_OK
        self.lean_requests = 0  # proxied requests sent on the lean path (tests, debugging)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                              sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[tuple[str, str], URL] = {}  # (engine, path) -> parsed URL

    def _open(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running loop."""
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=self.keepalive_s)
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            timeout=self._timeout, trust_env=False)
        return self._session

    async def request(self, base_url: str, method: str, path: str, body: bytes = b"",
                      *, timeout: float | None = None,
                      headers: Mapping[str, str] | None = None) -> _Response:
        """Send one request; returns once the response head is in. `timeout` bounds the whole
        exchange (health checks, scrapes); without it, connect and per-read timeouts apply."""
        session = self._session or self._open()
        sent = {**BASE_HEADERS, **headers} if headers else BASE_HEADERS
        try:
            if timeout is None and body and self.lean:
                resp = await self._lean(session, method, self._url(base_url, path), body, sent)
            else:
                bound = self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
                resp = await session.request(method, base_url + path, data=body if body else None,
                                             headers=sent, allow_redirects=False, timeout=bound)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, base_url, started=False) from exc
        return _Response(resp, base_url)

    def _url(self, base_url: str, path: str) -> URL:
        url = self._urls.get((base_url, path))
        if url is None:
            url = self._urls[(base_url, path)] = URL(base_url + path)
        return url

    async def _lean(self, session: aiohttp.ClientSession, method: str, url: URL, body: bytes,
                    headers: Mapping[str, str]) -> ClientResponse:
        """What `ClientSession._request` does for such a request, without its per-call set-up."""
        connector = session.connector
        assert connector is not None
        req = ClientRequest(method, url, headers=headers, data=body, loop=asyncio.get_running_loop(),
                            response_class=ClientResponse, session=session, ssl=True)
        try:
            conn = await connector.connect(req, traces=[], timeout=self._timeout)
        except TimeoutError as exc:  # as ClientSession does: a connect timeout is a connect error
            raise aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}") from exc
        except OSError as exc:
            if isinstance(exc, aiohttp.ClientError):
                raise
            raise aiohttp.ClientOSError(*exc.args) from exc
        self.lean_requests += 1
        assert conn.protocol is not None
        conn.protocol.set_response_params(timer=TimerNoop(), read_until_eof=True, auto_decompress=False,
                                          read_timeout=self._timeout.sock_read)
        try:
            resp = await req.send(conn)
            try:
                await resp.start(conn)
            except BaseException:
                resp.close()
                raise
        except OSError as exc:
            conn.close()
            raise exc if isinstance(exc, aiohttp.ClientError) else aiohttp.ClientOSError(*exc.args) from exc
        except BaseException:
            conn.close()
            raise
        return resp

    def drop(self, base_url: str) -> None:
        """An engine left: forget its parsed URLs (aiohttp closes its idle connections when they
        expire)."""
        self._urls = {key: url for key, url in self._urls.items() if key[0] != base_url}

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            await asyncio.sleep(0)  # let aiohttp's transports finish closing
