"""Serving the app on uvicorn (uvloop, httptools) inside an already running event loop.

`Listener` binds the socket itself (so port 0 and SO_REUSEPORT work, and the bound port is
known), then runs uvicorn's `Server.startup` / `main_loop` / `shutdown` directly rather than
`Server.serve`, which would install its own signal handlers over the caller's.

`RouterHttpProtocol` is uvicorn's httptools protocol with changes at the edge, no HTTP
framing of our own: a request line plus headers over `MAX_HEAD_BYTES` is refused with 431
naming the limit (uvicorn's httptools protocol sets no limit); a client that has not finished
its request line and headers `HEAD_TIMEOUT_S` after the connection opened or the read that began
its request (a timer is armed only for a head left incomplete by a read) is disconnected, and
one that has not finished its body `BODY_TIMEOUT_S` after the read that ended its head gets a
408 and is disconnected (uvicorn has neither timeout: a slowloris client would hold its
connection forever); the 400 it answers to an unparseable request is vLLM's JSON error shape
instead of plain text; and each
request's response head is handed to the socket together with the first piece of its body
(`HeldHead`), one write instead of two (uvicorn writes the head on `http.response.start`).

It also offers handlers a cheap way to learn that their client went away: the scope extension
`DISCONNECT_HOOKS` (`DisconnectHooks`, one per connection) runs the callables registered on it
when the connection is lost, so the proxy need not start a task per request that reads the ASGI
`receive` channel for `http.disconnect` (benchmarks/RESULTS.md, router speed). Servers without
the extension still get the `receive`-reading watcher (`router.shell.proxy`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from router.shell.errors import error_body

MAX_HEAD_BYTES = 64 * 1024  # request line plus headers
HEAD_TIMEOUT_S = 30.0  # to receive a request line plus headers, from the connection or the request start
BODY_TIMEOUT_S = 60.0  # to receive a body, from the read that ended its head (8 MiB: >= 140 kB/s)
KEEP_ALIVE_S = 75  # idle keep-alive connections close after this (above common load balancers' 60 s)


DISCONNECT_HOOKS = "llmstack.disconnect_hooks"  # scope["extensions"] key


class DisconnectHooks:
    """One connection's callables to run when its client goes away (registered by key)."""

    __slots__ = ("_hooks",)

    def __init__(self) -> None:
        self._hooks: dict[object, Callable[[], None]] = {}

    def add(self, key: object, hook: Callable[[], None]) -> None:
        self._hooks[key] = hook

    def discard(self, key: object) -> None:
        self._hooks.pop(key, None)

    def fire(self) -> None:
        hooks, self._hooks = self._hooks, {}
        for hook in hooks.values():
            hook()


class HeadTooLarge(Exception):
    """Raised inside the parser's callbacks; httptools reports it as a parser error (400)."""


class HeldHead:
    """Stands in for the transport of one request's answer until its head is out: the first
    write (uvicorn's response head) is held and sent with the next write (the body, or the
    stream's first piece) in one call; a head not followed within the same event-loop pass is
    sent on its own then. Once the head is out, the cycle writes to the transport directly."""

    __slots__ = ("_cycle", "_transport", "_held", "_loop")

    def __init__(self, cycle: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._cycle = cycle
        self._transport: asyncio.Transport = cycle.transport
        self._held: bytes | None = None
        self._loop = loop  # not asyncio.get_running_loop(): on Python 3.11 that is a getpid() syscall

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            held, self._held = self._held, None
            self._cycle.transport = self._transport
            self._transport.writelines((held, data))

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._cycle.transport = self._transport
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RouterHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a bounded head read in bounded time, JSON parse
    errors and the response head written with the body."""

    _head_bytes = 0
    _head_timer: asyncio.TimerHandle | None = None  # the head's or the body's deadline
    _in_head = False  # a request line has begun and its headers are not complete yet
    _in_body = False  # the headers are in and the body is not complete yet
    _head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._hooks = DisconnectHooks()
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)
        self._hooks.fire()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Most requests arrive whole in one read and need no timer; one left half-read gets it now
        # (once: later reads do not push the deadline back, so a trickle cannot hold the connection).
        if self._head_timer is None and not self.transport.is_closing():
            if self._in_head:
                self._arm_head_timer()
            elif self._in_body:
                self._head_timer = self.loop.call_later(BODY_TIMEOUT_S, self._body_timed_out)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        self._in_head = True
        super().on_message_begin()
        self.scope["extensions"] = {DISCONNECT_HOOKS: self._hooks}  # type: ignore[dict-item]

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        self._disarm_head_timer()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:  # a new cycle (not an upgrade)
            cycle.transport = HeldHead(cycle, self.loop)  # type: ignore[assignment]  # a Transport stand-in

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm_head_timer()
        super().on_message_complete()

    def _body_timed_out(self) -> None:
        """The client took too long over its body: 408 and close (the request is still being
        read, so nothing was answered yet; the handler sees the disconnect)."""
        self._head_timer = None
        if self._in_body and not self.transport.is_closing():
            self._write_error(408, f"request body not received within {BODY_TIMEOUT_S:g} s")

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        """The client took too long over its request head: drop it (nothing was answered yet)."""
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise HeadTooLarge(f"request line and headers are over {MAX_HEAD_BYTES} bytes")

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:  # RFC 6585 §5: the headers are too large
            self._write_error(431, f"request line and headers are over the router's limit of "
                                   f"{MAX_HEAD_BYTES} bytes")
        else:
            self._write_error(400, f"malformed HTTP request: {msg}")

    def _write_error(self, status: int, message: str) -> None:
        body = error_body(message, status)
        head = (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n"
                % (status, HTTPStatus(status).phrase.encode(), len(body)))
        self.transport.write(head + body)
        self.transport.close()


def listen_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound, listening TCP socket (port 0 picks one); `reuse_port` lets workers share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class Listener:
    """One uvicorn server for `app` on one socket; `start` returns once it accepts."""

    def __init__(self, app: Any, sock: socket.socket, *, lifespan: Literal["on", "off"],
                 graceful_s: float) -> None:
        # proxy_headers off: uvicorn trusts X-Forwarded-* only from 127.0.0.1 by default, which
        # never holds in a cluster, and its middleware is one more ASGI layer per request.
        config = uvicorn.Config(app, http=RouterHttpProtocol, loop="none", ws="none", lifespan=lifespan,
                                log_config=None, access_log=False, server_header=False, proxy_headers=False,
                                timeout_keep_alive=KEEP_ALIVE_S,
                                # uvicorn hands it to asyncio.wait_for: a float works, its hint says int
                                timeout_graceful_shutdown=graceful_s)  # type: ignore[arg-type]
        config.load()
        self.sock = sock
        self.server = uvicorn.Server(config)
        self.server.lifespan = config.lifespan_class(config)
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        await self.server.startup(sockets=[self.sock])
        self._loop_task = asyncio.get_running_loop().create_task(self.server.main_loop())

    def stop_accepting(self) -> None:
        """Close the listening socket; open connections carry on."""
        for server in getattr(self.server, "servers", []):
            server.close()

    async def stop(self) -> None:
        """Stop accepting, let open requests finish (up to the graceful timeout), then end."""
        self.server.should_exit = True
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
            await self.server.shutdown(sockets=[self.sock])
