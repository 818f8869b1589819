"""Shared test plumbing: run a real router on loopback in front of fake engines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp

from contracts import OUTCOME_NEW
from router.routing.base import Decision, EngineState, RouteRequest
from router.settings import HealthSettings, RouterSettings, StaticEngine
from router.shell.app import RouterApp, create_app

T = TypeVar("T")
JSON_HEADERS = {"content-type": "application/json"}


def json_session(**kwargs: Any) -> aiohttp.ClientSession:
    """A client session that declares its bodies JSON, as vLLM requires (and the router too)."""
    return aiohttp.ClientSession(headers=JSON_HEADERS, **kwargs)


class RoundRobinStub:
    """A trivial policy for the shell's tests (the real ones are tested on their own)."""

    kind = "test_round_robin"

    def __init__(self) -> None:
        self.turn = 0
        self.completed: list[tuple[str, bool]] = []
        self.engine_sets: list[tuple[str, ...]] = []

    def select(self, request: RouteRequest, engines: Sequence[EngineState]) -> Decision:
        engine = engines[self.turn % len(engines)]
        self.turn += 1
        return Decision(engine, OUTCOME_NEW)

    def on_complete(self, request: RouteRequest, engine_id: str, ok: bool) -> None:
        self.completed.append((engine_id, ok))

    def on_engines_changed(self, engine_ids: Collection[str]) -> None:
        self.engine_sets.append(tuple(engine_ids))


def settings_for(urls: Sequence[str], **overrides: Any) -> RouterSettings:
    """Fast health checks, one model `m`, the given engines."""
    base: dict[str, Any] = {
        "engines": tuple(StaticEngine(url=u) for u in urls),
        "models": ("m",),
        "health": HealthSettings(interval_s=0.1, timeout_s=0.3, metrics_interval_s=0.1),
        "host": "127.0.0.1",
        "port": 8080,
    }
    base.update(overrides)
    return RouterSettings(**base)


@asynccontextmanager
async def running(settings: RouterSettings, policy: Any = None,
                  environ: dict[str, str] | None = None) -> AsyncIterator[tuple[RouterApp, str]]:
    """A started app listening on a free loopback port; yields (app, base URL)."""
    app = create_app(settings, policy=policy or RoundRobinStub(), environ=environ or {})
    async with app:
        port = await app.serve("127.0.0.1", 0)
        yield app, f"http://127.0.0.1:{port}"


async def until(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll `predicate` until true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    """Run one async test body with a hard bound."""
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())
