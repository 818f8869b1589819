"""The router's KV-event subscriber: one supervised task per engine discovery found, reading the
engine's own cache events into the residency index (`router.routing.kv`).

Each task owns a pyzmq asyncio SUB socket connected to `tcp://<engine host>:<kv_events.port>`
(the host from the engine's URL; vLLM's PUB binds `tcp://*:5557`, `contracts.kv_events`) and a
socket monitor telling it when the publisher is reached or lost. What a batch, a replay answer or
a connection change means is decided by the engine's `EngineFeed` (pure); this module only moves
bytes. Replay runs on a fresh DEALER socket per request, `(b"", start seq)` out, `(b"", topic,
seq, payload)` back until vLLM's end marker (a REQ socket would accept only the first batch:
tests/router/routing/test_kv_events_decode.py), bounded by `kv_events.replay_timeout_s`; live
batches wait in the SUB socket's queue meanwhile (its high-water mark is the publisher's, 100,000
batches). Heartbeats (ZMTP PING, every quarter of the staleness bound) close a connection whose
peer went silent, so a publisher lost without a TCP reset still reads as lost.

`apply(states)` follows the registry: a new engine gets a feed and a task (`kv_events:<url>`,
not critical to the router's readiness: an engine without events only loses its precise
scoring), a removed one's task is cancelled and its blocks forgotten. What a policy needs is
`registry.kv` (`KvView`): the index and, per engine, whether its events are trusted now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from contracts.kv_events import REPLAY_END_SEQ
from router.routing.base import EngineState
from router.routing.engines import EngineRegistry
from router.routing.kv.events import KvEventBatch, KvEventDecodeError, Tier, decode_message
from router.routing.kv.feed import EngineFeed, KvView, Replay
from router.routing.kv.residency import ResidencyIndex
from router.settings import KvEventsSettings
from router.shell.supervisor import Supervisor

log = logging.getLogger(__name__)

TASK_PREFIX = "kv_events:"
_MONITORED = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where one engine publishes (`events`) and answers replay requests (`replay`, None: none)."""

    events: str
    replay: str | None


def engine_endpoints(settings: KvEventsSettings) -> Callable[[str], Endpoints]:
    """The engine's sockets from its base URL: its host, the settings' ports."""

    def endpoints(url: str) -> Endpoints:
        host = urlsplit(url).hostname or ""
        host = f"[{host}]" if ":" in host else host
        replay = f"tcp://{host}:{settings.replay_port}" if settings.replay_port else None
        return Endpoints(events=f"tcp://{host}:{settings.port}", replay=replay)

    return endpoints


class KvEventsSubscriber:
    """Every engine's KV-event subscription; see the module docstring."""

    def __init__(self, settings: KvEventsSettings, registry: EngineRegistry, supervisor: Supervisor, *,
                 endpoints: Callable[[str], Endpoints] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.clock = clock
        self.view = KvView(index=ResidencyIndex(), feeds={})
        registry.kv = self.view
        self._endpoints = endpoints or engine_endpoints(settings)
        self._ctx: zmq.asyncio.Context | None = None

    @property
    def index(self) -> ResidencyIndex:
        return self.view.index

    def apply(self, states: Mapping[str, EngineState]) -> None:
        """Subscribe to every engine in `states` not yet followed; drop those no longer there."""
        feeds = self.view.feeds
        for url in [url for url in feeds if url not in states]:
            self.supervisor.cancel(TASK_PREFIX + url)
            del feeds[url]
            self.index.remove_engine(url)
        for url, state in states.items():
            if url not in feeds:
                self._follow(url, state)

    def _follow(self, url: str, state: EngineState) -> None:
        self.index.add_engine(url, {Tier.GPU: state.gpu_cache_tokens, Tier.CPU: state.cpu_cache_tokens})
        self.view.feeds[url] = self._new_feed(url)
        self.supervisor.spawn(TASK_PREFIX + url, lambda: self._run(url), critical=False)

    def _new_feed(self, url: str) -> EngineFeed:
        return EngineFeed(url, self.index, stale_after_s=self.settings.stale_after_s, now=self.clock())

    def states(self) -> dict[str, str]:
        """Each engine's feed state now, by engine URL."""
        now = self.clock()
        return {url: feed.state(now).value for url, feed in self.view.feeds.items()}

    def close(self) -> None:
        """Drop the ZMQ context (after the supervisor has cancelled the tasks)."""
        if self._ctx is not None:
            self._ctx.destroy(linger=0)
            self._ctx = None

    # --- one engine ---------------------------------------------------------------------------
    async def _run(self, url: str) -> None:
        feed = self.view.feeds[url]
        if feed.counts.batches or feed.counts.duplicates:  # a restart after a crash: start clean
            feed = self.view.feeds[url] = self._new_feed(url)
        endpoints = self._endpoints(url)
        sub = self._socket(zmq.SUB, endpoints.events)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        monitor = sub.get_monitor_socket(_MONITORED)
        sub.connect(endpoints.events)
        try:
            await self._replay(feed, feed.sync(), endpoints.replay)
            poller = zmq.asyncio.Poller()
            poller.register(sub, zmq.POLLIN)
            poller.register(monitor, zmq.POLLIN)
            while True:
                ready = dict(await poller.poll())
                if monitor in ready:
                    await self._connection(feed, monitor, endpoints.replay)
                if sub in ready:
                    await self._drain(feed, sub, endpoints.replay)
        finally:
            sub.disable_monitor()
            monitor.close(linger=0)
            sub.close(linger=0)

    def _socket(self, kind: int, endpoint: str) -> zmq.asyncio.Socket:
        if self._ctx is None:
            self._ctx = zmq.asyncio.Context()
        sock = self._ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if endpoint.startswith("tcp://["):
            sock.setsockopt(zmq.IPV6, 1)
        if kind == zmq.SUB:
            beat_ms = max(100, int(self.settings.stale_after_s * 250))
            sock.setsockopt(zmq.RCVHWM, 100_000)  # vLLM's PUB high-water mark (contracts.kv_events)
            sock.setsockopt(zmq.HEARTBEAT_IVL, beat_ms)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 2 * beat_ms)
            sock.setsockopt(zmq.RECONNECT_IVL, 100)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2_000)
        return sock

    async def _connection(self, feed: EngineFeed, monitor: zmq.asyncio.Socket, replay: str | None) -> None:
        while True:
            try:
                frames = await monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = parse_monitor_message(frames)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                feed.disconnected(self.clock())
                log.info("KV events of %s: publisher lost", feed.engine)
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED and feed.connected():
                log.info("KV events of %s: publisher reached again; replaying its buffer", feed.engine)
                await self._replay(feed, feed.sync(), replay)

    async def _drain(self, feed: EngineFeed, sub: zmq.asyncio.Socket, replay: str | None) -> None:
        while True:
            try:
                frames = await sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            batch = _decode(feed.engine, frames)
            if batch is None:
                continue  # lost: the next batch shows the gap and replay tries again
            gap = feed.live(batch)
            if gap is not None:
                await self._replay(feed, gap, replay)

    async def _replay(self, feed: EngineFeed, replay: Replay, endpoint: str | None) -> None:
        batches = await self._fetch(endpoint, replay.start) if endpoint is not None else None
        feed.replayed(replay, batches)
        log.log(logging.INFO if feed.trusted(self.clock()) else logging.WARNING,
                "KV events of %s: replay from seq %d: %s (%s)", feed.engine, replay.start,
                "no answer" if batches is None else f"{len(batches)} batches", feed.reason)

    async def _fetch(self, endpoint: str, start: int) -> list[KvEventBatch] | None:
        """Every batch the replay socket returns from `start` on, or None without a whole answer
        in time (undecodable batches are left out: the feed sees them as lost)."""
        dealer = self._socket(zmq.DEALER, endpoint)
        dealer.connect(endpoint)
        batches: list[KvEventBatch] = []
        try:
            async with asyncio.timeout(self.settings.replay_timeout_s):
                await dealer.send_multipart([b"", start.to_bytes(8, "big")])
                while True:
                    frames = await dealer.recv_multipart()
                    if len(frames) == 4 and frames[2] == REPLAY_END_SEQ:
                        return batches
                    batch = _decode(endpoint, frames[1:])
                    if batch is not None:
                        batches.append(batch)
        except TimeoutError:
            return None
        finally:
            dealer.close(linger=0)


def _decode(where: str, frames: list[bytes]) -> KvEventBatch | None:
    try:
        return decode_message(frames)
    except KvEventDecodeError as exc:
        log.warning("KV events of %s: a message dropped: %s", where, exc)
        return None
