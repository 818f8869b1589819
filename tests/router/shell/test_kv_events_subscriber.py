"""The router subscribes to vLLM's own KV-event publisher (`ZmqEventPublisher` from `.venv-engine`,
driven by tests/router/shell/vllm_kv_live_publisher.py) on loopback tcp or ipc sockets: stored
blocks reach the residency index (those published before the router started too, by replay), a
lost batch is replayed, a gap the buffer cannot fill and a dead publisher put the engine in
fallback (untrusted, stale) until a fresh start or a cache reset, and a removed engine's task
ends. Everything is polled with deadlines."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import contracts as c
from router.routing.kv.events import Tier
from router.routing.kv.feed import FeedState
from router.routing.kv.keys import block_keys
from router.routing.kv.residency import Residency
from router.settings import RouterSettings
from router.shell.app import RouterApp, create_app
from router.shell.kv_events import TASK_PREFIX, Endpoints
from stack_components.engine_check import engine_python

ROOT = Path(__file__).resolve().parents[3]
PUBLISHER = Path(__file__).with_name("vllm_kv_live_publisher.py")
TOPIC = "kv@127.0.0.1:8000@llama"
ENGINE = "http://127.0.0.1:9"  # nothing listens: only the KV-event sockets matter here
DEADLINE_S = 15.0

pytestmark = pytest.mark.timeout(120)


def _stored(tokens: list[int], hashes: list[int], parent: int | None = None, medium: str = "GPU") -> dict:
    return {"type": "BlockStored", "block_hashes": hashes, "parent_block_hash": parent, "token_ids": tokens,
            "block_size": 16, "lora_id": None, "medium": medium, "lora_name": None}


A, B, C = (list(range(base, base + 32)) for base in (100, 300, 500))


class Publisher:
    """vLLM's publisher in its own process; `publish` returns the batch's seq."""

    def __init__(self, events: str, replay: str | None, buffer_steps: int = 10_000) -> None:
        python = engine_python(ROOT)
        assert python is not None, "the engine-check venv is missing: run `make install` (.venv-engine)"
        env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", VLLM_LOGGING_LEVEL="ERROR")
        self.proc = subprocess.Popen([str(python), "-P", str(PUBLISHER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self._ask({"events": events, "replay": replay, "topic": TOPIC,
                          "buffer_steps": buffer_steps}) == {"ready": True}

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()  # the helper answers within its own 10 s deadline or exits
        assert line, "the publisher process ended"
        return json.loads(line)

    def publish(self, *events: dict) -> int:
        return self._ask({"op": "publish", "events": list(events)})["seq"]

    def drop(self, count: int) -> None:
        self._ask({"op": "drop", "count": count})

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


@pytest.fixture
def sockets() -> Iterator[Callable[[str], Endpoints]]:
    """ipc:// endpoints per engine URL, in a short directory (ipc paths are limited to ~100 bytes)."""
    folder = tempfile.mkdtemp(prefix="kv", dir="/tmp")
    yield lambda url: Endpoints(events=f"ipc://{folder}/{url.rsplit(':', 1)[1]}-events",
                                replay=f"ipc://{folder}/{url.rsplit(':', 1)[1]}-replay")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def publishers() -> Iterator[list[Publisher]]:
    started: list[Publisher] = []
    yield started
    for publisher in started:
        publisher.close()


def _settings(engines: list[str], **kv: Any) -> RouterSettings:
    return RouterSettings.from_dict({
        "engines": [{"url": url, "model": "llama"} for url in engines],
        "kv_events": {"enabled": True, "stale_after_s": 1.0, "replay_timeout_s": 2.0} | kv,
        "queue": {"max_held": 0}})


@pytest.fixture
def router(sockets) -> Iterator[Callable[..., Any]]:
    """`await router(engines, inject=..., **kv_events)`: a started app (stopped by `run_router`)."""
    apps: list[RouterApp] = []

    async def start(engines: list[str] = [ENGINE], *, inject: bool = True, **kv: Any) -> RouterApp:  # noqa: B006
        app = create_app(_settings(engines, **kv), kv_endpoints=sockets if inject else None)
        await app.start()
        apps.append(app)
        return app

    start.apps = apps  # type: ignore[attr-defined]
    yield start


def run_router(router: Callable[..., Any], body: Callable[[], Awaitable[None]]) -> None:
    """Run one test body, bounded, stopping its apps in the same loop."""
    async def bounded() -> None:
        try:
            await asyncio.wait_for(body(), 90)
        finally:
            for app in router.apps:  # type: ignore[attr-defined]
                await app.stop()
    asyncio.run(bounded())


async def until(check: Callable[[], bool], what: str, nudge: Callable[[], object] | None = None) -> None:
    """Poll `check` until it holds (calling `nudge` every second: a batch after one lost to the
    PUB socket's slow-joiner window shows the gap), or fail naming `what`."""
    loop = asyncio.get_running_loop()
    deadline, nudged = loop.time() + DEADLINE_S, loop.time()
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"not within {DEADLINE_S} s: {what}")
        if nudge is not None and loop.time() - nudged > 1.0:
            nudge()
            nudged = loop.time()
        await asyncio.sleep(0.02)


def _state(app: RouterApp, engine: str = ENGINE) -> FeedState:
    assert app.kv_events is not None
    return app.kv_events.view.feeds[engine].state(app.kv_events.clock())


def _gpu(app: RouterApp, tokens: list[int], engine: str = ENGINE) -> int:
    assert app.kv_events is not None
    return app.kv_events.index.match(engine, block_keys(tokens)).blocks.get(Tier.GPU, 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_stored_blocks_reach_the_index_live_and_by_replay_over_tcp(router, publishers) -> None:
    """Over tcp on 127.0.0.1 (the engine's host from its URL, the settings' ports): a store
    published before the router started arrives by the start-up replay, a later one live; the
    engine is `live`, trusted on `registry.kv`, and says so on /health and /metrics."""

    async def body() -> None:
        events, replay = _free_port(), _free_port()
        publisher = Publisher(f"tcp://127.0.0.1:{events}", f"tcp://127.0.0.1:{replay}")
        publishers.append(publisher)
        assert publisher.publish(_stored(A, [1, 2])) == 0
        app = await router(inject=False, port=events, replay_port=replay)
        await until(lambda: _gpu(app, A) == 2, "the store published before the router started")
        assert _state(app) is FeedState.LIVE
        publisher.publish(_stored(B, [3, 4]))
        await until(lambda: _gpu(app, B) == 2, "a live store", nudge=lambda: publisher.publish())
        assert app.registry.kv is not None and app.registry.kv.trusted(ENGINE, app.kv_events.clock())
        assert app.health_report()[1].kv_events == {ENGINE: "live"}
        text = app.metrics.render(app.registry.states.values(), {}, app.kv_events.view.feeds,
                                  app.kv_events.clock()).decode()
        assert f'{c.ROUTER_KV_EVENTS_STATE}{{engine="{ENGINE}",state="live"}} 1.0' in text
        assert f'{c.ROUTER_KV_EVENTS_STATE}{{engine="{ENGINE}",state="stale"}} 0.0' in text

    run_router(router, body)


def test_a_lost_batch_is_replayed(router, publishers, sockets) -> None:
    """A batch the PUB socket loses (still in vLLM's replay buffer) shows as a gap at the next
    one; the DEALER replay returns it, in order, and the engine stays trusted."""

    async def body() -> None:
        ends = sockets(ENGINE)
        publisher = Publisher(ends.events, ends.replay)
        publishers.append(publisher)
        app = await router()
        publisher.publish(_stored(A, [1, 2]))
        await until(lambda: _gpu(app, A) == 2, "the first store", nudge=lambda: publisher.publish())
        publisher.drop(1)
        publisher.publish(_stored(B, [3, 4]))  # lost live
        publisher.publish({"type": "BlockRemoved", "block_hashes": [1, 2], "medium": "GPU"})
        await until(lambda: _gpu(app, B) == 2 and _gpu(app, A) == 0, "the lost store, then the removal")
        feed = app.kv_events.view.feeds[ENGINE]
        assert feed.counts.gaps_replayed >= 1 and feed.counts.gaps_lost == 0
        assert _state(app) is FeedState.LIVE

    run_router(router, body)


def test_a_gap_past_the_replay_buffer_falls_back_until_the_cache_is_cleared(router, publishers,
                                                                                 sockets) -> None:
    """With a 2-batch buffer, 3 lost batches cannot be replayed: the engine is `untrusted` (its
    later batches still applied) until vLLM reports `AllBlocksCleared`."""

    async def body() -> None:
        ends = sockets(ENGINE)
        publisher = Publisher(ends.events, ends.replay, buffer_steps=2)
        publishers.append(publisher)
        app = await router()
        publisher.publish(_stored(A, [1, 2]))
        await until(lambda: _gpu(app, A) == 2, "the first store", nudge=lambda: publisher.publish())
        publisher.drop(3)
        for tokens, hashes in ((B, [3, 4]), (C, [5, 6]), (A, [7, 8])):
            publisher.publish(_stored(tokens, hashes))
        publisher.publish()
        await until(lambda: _state(app) is FeedState.UNTRUSTED, "untrusted after an unfillable gap")
        assert not app.registry.kv.trusted(ENGINE, app.kv_events.clock())
        assert app.kv_events.view.feeds[ENGINE].counts.gaps_lost == 1
        assert app.health_report()[1].kv_events == {ENGINE: "untrusted"}
        publisher.publish({"type": "AllBlocksCleared"}, _stored(B, [9, 10]))
        await until(lambda: _state(app) is FeedState.LIVE, "live again after AllBlocksCleared")
        assert _gpu(app, B) == 2 and _gpu(app, A) == 0

    run_router(router, body)


def test_a_dead_publisher_is_stale_and_a_fresh_one_live_from_empty(router, publishers, sockets) -> None:
    """SIGKILL the engine's publisher: the engine goes `stale` within the staleness bound; a new
    publisher on the same sockets (an engine restart) is followed from its seq 0, the old blocks
    forgotten."""

    async def body() -> None:
        ends = sockets(ENGINE)
        first = Publisher(ends.events, ends.replay)
        publishers.append(first)
        app = await router()
        first.publish(_stored(A, [1, 2]))
        await until(lambda: _gpu(app, A) == 2, "the first store", nudge=lambda: first.publish())
        first.kill()
        await until(lambda: _state(app) is FeedState.STALE, "stale after the publisher died")
        assert app.health_report()[1].kv_events == {ENGINE: "stale"}
        second = Publisher(ends.events, ends.replay)
        publishers.append(second)
        second.publish(_stored(B, [3, 4]))
        await until(lambda: _state(app) is FeedState.LIVE and _gpu(app, B) == 2, "live on the new publisher",
                    nudge=lambda: second.publish())
        assert _gpu(app, A) == 0

    run_router(router, body)


def test_removing_an_engine_ends_its_task_and_forgets_its_blocks(router, publishers, sockets) -> None:
    """Discovery drops one of two engines: its subscription task is cancelled and gone from the
    supervisor, its blocks from the index; the other engine is still followed."""

    async def body() -> None:
        other = "http://127.0.0.1:10"
        ends = sockets(ENGINE)
        publisher = Publisher(ends.events, ends.replay)
        publishers.append(publisher)
        app = await router([ENGINE, other])
        publisher.publish(_stored(A, [1, 2]))
        await until(lambda: _gpu(app, A) == 2, "the first store", nudge=lambda: publisher.publish())
        task = app.supervisor._tasks[TASK_PREFIX + ENGINE]
        app.apply_engines([spec for spec in _specs(app) if spec.url == other])
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
        assert task.cancelled()
        names = app.supervisor.names()
        assert TASK_PREFIX + ENGINE not in names and TASK_PREFIX + other in names
        assert app.kv_events.index.engines == (other,) and set(app.kv_events.states()) == {other}
        assert Residency() == app.kv_events.index.match(other, block_keys(A))

    run_router(router, body)


def _specs(app: RouterApp) -> list[Any]:
    from router.shell.discovery.static import static_specs

    return static_specs(app.settings)
