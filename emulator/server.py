"""One emulated engine on one loopback port: its runtime, its aiohttp listener, its faults.

`EngineServer.start()` binds the port (0 picks a free one) and starts the step loop;
`set_faults()` swaps the fault set and, for `dead`, closes the listener and drops every open
connection (reopening it on revival, after `revive_after_s` or when cleared), and applies
`kv_clear` once (storing the set without it). With `kv_events` configured the engine's
`KvPublisher` binds its sockets after the HTTP port (the topic names it) and closes at stop.
aiohttp's server sets TCP_NODELAY on accepted sockets, and cancels a handler whose client disconnects
(`handler_cancellation=True`), which frees the request's batch slot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket

from aiohttp import web

from contracts.kv_events import topic
from emulator.app import TRANSPORTS, build_app
from emulator.config import EngineConfig, KvEventsSettings
from emulator.engine import EngineRuntime
from emulator.errors import EmulatorError
from emulator.faults import Faults
from emulator.kv_publisher import KvPublisher

SHUTDOWN_GRACE_S = 0.25  # open streams get this long at stop before their connections are dropped
_FINAL_WRITE_S = 1.0  # after an abort, handlers get this long to write their final chunks
_POLL_S = 0.02


class EngineServer:
    """One engine: runtime + HTTP listener on `host:port`."""

    def __init__(self, config: EngineConfig, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.runtime = EngineRuntime(config)
        self._app = build_app(self.runtime, self.set_faults)
        self._runner = web.AppRunner(self._app, handler_cancellation=True, access_log=None,
                                     shutdown_timeout=SHUTDOWN_GRACE_S)
        self._site: web.BaseSite | None = None
        self._revive: asyncio.TimerHandle | None = None
        self._revival: asyncio.Task[None] | None = None
        self._stopped = False
        self.kv_publisher: KvPublisher | None = None

    @property
    def url(self) -> str:
        """Base URL of the engine (`http://host:port`)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind the port and start the engine."""
        await self._runner.setup()
        self.runtime.start()
        if not self.runtime.faults.dead:
            await self._listen()
        if self.config.kv_events is not None:
            await self._start_kv_publisher(self.config.kv_events)
        await self.set_faults(self.runtime.faults)  # a kv_clear given at start, the revival timer

    async def _start_kv_publisher(self, settings: KvEventsSettings) -> None:
        name = topic(self.host, self.port, self.config.model) if settings.topic is None else settings.topic
        publisher = KvPublisher(settings, topic=name, faults=lambda: self.runtime.faults,
                                seed=self.config.seed)
        await publisher.start()
        self.kv_publisher = publisher
        self.runtime.kv_sink = publisher

    async def stop(self) -> None:
        """Stop listening, drop connections, stop the engine (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._revive is not None:
            self._revive.cancel()
        await self.runtime.stop()
        if self.kv_publisher is not None:
            await self.kv_publisher.stop()
        await self._runner.cleanup()
        self._site = None

    async def shutdown(self, timeout_s: float | None = None) -> int:
        """SIGTERM as vLLM 0.33 handles it, then `stop`; `timeout_s` overrides the config's
        `shutdown_timeout_s`. Returns how many open requests did not finish normally.

        From vLLM 0.33.0's source: the API server keeps serving HTTP while its engine client
        shuts down (`handle_shutdown`, vllm/entrypoints/launchers/launcher.py), `/health` stays
        200 (`check_health` fails only on a dead engine, vllm/v1/engine/async_llm.py), and the
        engine core (`_handle_shutdown`, `_reject_add_in_shutdown`, vllm/v1/engine/core.py)
        with timeout 0 finishes every request as aborted (the client gets a final chunk with
        `finish_reason: "abort"`), with N > 0 runs open requests on and aborts every new one on
        arrival; when N s pass with work left the process manager kills the engine core
        (`get_engine_process_shutdown_timeout`, vllm/v1/engine/utils.py) and the HTTP server is
        cancelled: what is still open loses its connection, with no final chunk.
        """
        runtime = self.runtime
        timeout = self.config.shutdown_timeout_s if timeout_s is None else timeout_s
        runtime.drain()
        if timeout == 0:
            cut = runtime.abort_all()
            await self._wait_idle(_FINAL_WRITE_S)
        else:
            await self._wait_idle(timeout)
            cut = runtime.open_requests
        await self.stop()
        return cut

    async def _wait_idle(self, timeout_s: float) -> None:
        """Poll until no request is open, for at most `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.runtime.open_requests and loop.time() < deadline:
            await asyncio.sleep(_POLL_S)

    async def set_faults(self, faults: Faults) -> None:
        """Replace the fault set; dying and reviving open or close the listener."""
        was_dead = self.runtime.faults.dead
        if faults.kv_clear is not None:
            self.runtime.clear_kv(faults.kv_clear)
            faults = dataclasses.replace(faults, kv_clear=None)
        self.runtime.faults = faults
        if self.kv_publisher is not None:
            self.kv_publisher.faults_changed()
        if faults.dead and not was_dead:
            await self._die()
        elif was_dead and not faults.dead:
            await self._listen()
        self._schedule_revival(faults)

    async def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise EmulatorError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        self._site = site

    async def _die(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None
        transports = self._app[TRANSPORTS]
        for transport in list(transports):
            transport.abort()  # type: ignore[attr-defined]
        transports.clear()
        self.runtime.cancel_all()

    def _schedule_revival(self, faults: Faults) -> None:
        if self._revive is not None:
            self._revive.cancel()
            self._revive = None
        if faults.dead and faults.revive_after_s is not None:
            loop = asyncio.get_running_loop()
            revived = Faults.from_dict({**faults.to_dict(), "dead": False, "revive_after_s": None})
            self._revive = loop.call_later(faults.revive_after_s, self._start_revival, revived)

    def _start_revival(self, faults: Faults) -> None:
        self._revive = None
        self._revival = asyncio.get_running_loop().create_task(self.set_faults(faults))
