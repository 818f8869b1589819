"""A lean HTTP/1.1 server: one `asyncio.Protocol` per connection, `httptools` parsing.

No framework on the hot path: a request is parsed into a `Request`, handed to one async
handler together with a `Responder`, and answered either whole (`send`) or as a chunked
stream (`start_stream` / `write` / `end_stream`). Keep-alive and pipelining are honoured
(requests on one connection are answered in order); TCP_NODELAY is set on every socket;
writes respect the transport's flow control; a client that disconnects cancels its
handler task, which is how the proxy cancels the upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import httptools

from router.errors import RouterError, error_body

log = logging.getLogger(__name__)

_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
JSON = b"application/json"
MAX_HEAD_BYTES = 64 * 1024  # request line plus headers
MAX_PIPELINED = 16  # queued requests on one connection before it stops being read
IDLE_TIMEOUT_S = 75.0  # a connection must deliver its next whole request within this (keep-alive, slowloris)


class Request:
    """One parsed request; header names are lower-case; `body` is None when over the limit."""

    __slots__ = ("method", "path", "query", "headers", "body", "client", "keep_alive")

    def __init__(self, method: str, target: bytes, headers: dict[str, str], body: bytes | None,
                 client: str, keep_alive: bool) -> None:
        path, _, query = target.partition(b"?")
        self.method = method
        self.path = path.decode("latin-1")
        self.query = query.decode("latin-1")
        self.headers = headers
        self.body = body
        self.client = client
        self.keep_alive = keep_alive


Handler = Callable[[Request, "Responder"], Awaitable[None]]


def _head(status: int, content_type: bytes, extra: tuple[tuple[str, str], ...], keep_alive: bool) -> bytes:
    line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Status\r\n".encode()
    parts = [line, b"content-type: ", content_type, b"\r\n"]
    for name, value in extra:
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    return b"".join(parts)


class Responder:
    """Writes one response on the connection; the handler calls exactly one of `send` or
    `start_stream` (+ `write`* + `end_stream`)."""

    __slots__ = ("_conn", "keep_alive", "started")

    def __init__(self, conn: HttpProtocol, keep_alive: bool) -> None:
        self._conn = conn
        self.keep_alive = keep_alive
        self.started = False

    @property
    def disconnected(self) -> bool:
        return self._conn.closed

    def send(self, status: int, body: bytes, content_type: bytes = JSON,
             headers: tuple[tuple[str, str], ...] = ()) -> None:
        """A whole response with a content-length."""
        self.started = True
        head = _head(status, content_type, headers, self.keep_alive)
        self._conn.write(b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body))

    def send_error(self, err: RouterError) -> None:
        self.send(err.status, err.body(), JSON, err.headers)

    def start_stream(self, status: int, content_type: bytes,
                     headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Begin a chunked response; follow with `write` calls and one `end_stream`."""
        self.started = True
        head = _head(status, content_type, headers, self.keep_alive)
        self._conn.write(head + b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n")

    async def write(self, chunk: bytes) -> None:
        """One chunk, sent as soon as it is written; waits only when the client reads slowly."""
        if chunk:
            self._conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if self._conn.paused:
                await self._conn.drain()

    def push(self, chunk: bytes) -> None:
        """One chunk, sent now, without waiting; the caller watches `paused` / `on_resume`."""
        if chunk:
            self._conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    @property
    def paused(self) -> bool:
        """True while the client's socket buffer is full."""
        return self._conn.paused

    def on_resume(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when the client has drained its buffer."""
        self._conn.resume_callbacks.append(callback)

    def end_stream(self) -> None:
        self._conn.write(b"0\r\n\r\n")


class HttpProtocol(asyncio.Protocol):
    """One client connection: parse, dispatch to the handler, answer in order."""

    def __init__(self, handler: Handler, max_body_bytes: int, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self._handler = handler
        self._max_body = max_body_bytes
        self._idle_timeout = idle_timeout
        self._idle_timer: asyncio.TimerHandle | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._client = ""
        self._pending: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.paused = False
        self.resume_callbacks: list[Callable[[], None]] = []
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._head_size = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0

    # --- transport callbacks ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self._client = peer[0] if isinstance(peer, tuple) else ""
        self._arm_idle()

    def _arm_idle(self) -> None:
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(self._idle_timeout, self._close_idle)

    def _disarm_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _close_idle(self) -> None:
        self._idle_timer = None
        if self._task is None and self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm_idle()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._wake_drain()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain()
        callbacks, self.resume_callbacks = self.resume_callbacks, []
        for callback in callbacks:
            callback()

    # --- parser callbacks ---------------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        self._count_head(len(name) + len(value))

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD_BYTES:
            raise httptools.HttpParserError("request line and headers are over 64 KiB")

    def on_headers_complete(self) -> None:
        if self._headers.get("expect", "").lower() == "100-continue" and not self.closed:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= self._max_body:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._disarm_idle()
        parser = self._parser
        body = None if self._size > self._max_body else b"".join(self._body)
        request = Request(parser.get_method().decode("latin-1"), self._url, self._headers, body,
                          self._client, parser.should_keep_alive())
        self._reset()
        if self._task is None:
            self._start(request)
        else:
            self._pending.append(request)
            if len(self._pending) >= MAX_PIPELINED:
                self._transport.pause_reading()  # type: ignore[union-attr]

    # --- dispatch -----------------------------------------------------------------------
    def _start(self, request: Request) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(request))

    async def _run(self, request: Request) -> None:
        responder = Responder(self, request.keep_alive)
        try:
            await self._handler(request, responder)
        except RouterError as err:
            if responder.started:
                responder.keep_alive = False  # a half-sent answer: only closing can end it
            else:
                responder.send_error(err)
        except Exception:
            log.exception("unhandled error answering %s %s", request.method, request.path)
            if not responder.started:
                responder.send(500, error_body("internal router error", "internal_error", 500))
            responder.keep_alive = False
        self._task = None
        if self.closed:
            return
        if not responder.keep_alive:
            self._transport.close()  # type: ignore[union-attr]
        elif self._pending:
            if len(self._pending) == MAX_PIPELINED:
                self._transport.resume_reading()  # type: ignore[union-attr]
            self._start(self._pending.popleft())
        else:
            self._arm_idle()

    def _fail(self, status: int, message: str) -> None:
        if self._task is None and self._transport is not None and not self.closed:
            body = error_body(message, "invalid_request_error", status)
            head = _head(status, JSON, (), False)
            self.write(b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body))
        if self._transport is not None:
            self._transport.close()

    # --- writing ------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.closed:
            self._transport.write(data)  # type: ignore[union-attr]

    async def drain(self) -> None:
        if self.paused and not self.closed:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    def _wake_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def start_server(handler: Handler, *, host: str, port: int, max_body_bytes: int,
                       reuse_port: bool = False, sock: socket.socket | None = None,
                       idle_timeout: float = IDLE_TIMEOUT_S) -> asyncio.Server:
    """Listen and serve `handler`; `port=0` picks a free port (see `bound_port`)."""
    loop = asyncio.get_running_loop()

    def factory() -> HttpProtocol:
        return HttpProtocol(handler, max_body_bytes, idle_timeout)

    if sock is not None:
        return await loop.create_server(factory, sock=sock, backlog=2048)
    return await loop.create_server(factory, host, port, reuse_port=reuse_port or None, backlog=2048)


def bound_port(server: asyncio.Server) -> int:
    """The port a started server listens on."""
    return int(server.sockets[0].getsockname()[1])
