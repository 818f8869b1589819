"""The runs of one mode, on the shared engines (each reset first) with fresh routers and fresh
conversations (the same seed: every run sends the same prompts).

- `base` (gated: every decision's prediction is attributed): replica A serves `warm_rounds`
  rounds (accuracy), then the engine that served the most of the last round restarts
  (`kv_clear: restart`) and the users go on for the restart window; then, with no traffic,
  replica B starts, and once ready the users' next two rounds go half through A, half through B,
  the halves swapped in the second, so each replica serves every user once; before each of
  these requests is routed every engine is asked how much of its prompt it holds (`POST
  /emulator/cached`), and each replica is judged by the share of that it found: under cache
  pressure a user's hit rate depends mostly on whether its conversation survived, which differs
  between the rounds and users each replica happens to get (three runs with one split measured
  the hit-rate ratio at 1.08, 0.81 and 1.51).
- `capacity` (ungated), twice: the router told each engine's real GPU capacity (the oracle), and
  told twice it; `warm_rounds` rounds each. Each also gives the router's CPU per request: its
  process's CPU time (/proc) over the rounds, less its idle rate (measured for `idle_cpu_s`
  before the load) over their duration, per request.
- `drop` (ungated): every engine drops and reorders that share of its event batches; the same
  rounds; the router's /health is sampled meanwhile for the feeds' states.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from benchmarks.kv_events import scrape
from benchmarks.kv_events.client import Record, Users
from benchmarks.kv_events.cluster import Engines, Replica, Routers, router_settings
from benchmarks.kv_events.figures import hit_rate
from benchmarks.kv_events.plan import KvPlan
from contracts import PATH_HEALTH, PATH_METRICS
from local.procs import cpu_seconds, rss_bytes


@dataclass
class Counters:
    """The engines' (queried, hit) tokens and the router's predictions, per engine URL."""

    engines: dict[str, tuple[float, float]]
    predicted: dict[str, float] | None

    def delivered_since(self, earlier: Counters) -> dict[str, float]:
        return {e: hit - earlier.engines.get(e, (0.0, 0.0))[1] for e, (_, hit) in self.engines.items()}

    def predicted_since(self, earlier: Counters) -> dict[str, float] | None:
        if self.predicted is None:
            return None
        before = earlier.predicted or {}
        return {e: v - before.get(e, 0.0) for e, v in self.predicted.items()}


@dataclass
class Base:
    warm: list[Record]
    predicted: dict[str, float] | None
    """Counter growth over the warm rounds, per engine (None: the router exports none)."""
    delivered: dict[str, float]
    wiped: str
    restart_at: float
    window: list[Record]
    join_ready_s: float
    joined: list[Record]
    """The two rounds after the join, through B (each user once)."""
    warm_peer: list[Record]
    """The same two rounds, through A (each user once)."""
    slack_tokens: int
    router_idle_mb: float
    """Replica A's RSS once ready, before any request: the shell's share of the memory."""


@dataclass
class Capacity:
    hit_rate: float
    requests: int
    failed: int
    cpu_s_per_request: float


@dataclass
class Drop:
    hit_rate: float
    requests: int
    failed: int
    router_alive: bool
    gaps: dict[str, float]
    fallbacks: dict[str, float]
    states: Counter = field(default_factory=Counter)


@dataclass
class Ctx:
    plan: KvPlan
    session: aiohttp.ClientSession
    engines: Engines
    routers: Routers
    scoring: bool
    say: Callable[[str], object]
    kept: list[tuple[str, Record]] = field(default_factory=list)
    """Every record of the run, by mode (for `records.jsonl`)."""

    def keep(self, mode: str, records: list[Record]) -> None:
        self.kept += [(mode, r) for r in records]


async def counters(ctx: Ctx, replica: Replica) -> Counters:
    engines = {}
    for url in ctx.engines.urls:
        async with ctx.session.get(url + PATH_METRICS) as resp:
            engines[url] = scrape.engine_cache(await resp.text())
    async with ctx.session.get(replica.url + PATH_METRICS) as resp:
        predicted = scrape.predicted_by_engine(await resp.text())
    return Counters(engines, predicted)


async def router(ctx: Ctx, mode: str, label: str, factor: float = 1.0) -> Replica:
    settings = router_settings(ctx.plan, mode, ctx.engines.urls, ctx.engines.kv_port, capacity_factor=factor,
                               scoring=ctx.scoring)
    replica = ctx.routers.start(settings, f"{mode}-{label}")
    await ctx.routers.ready(ctx.session, replica, ctx.plan.engines)
    return replica


def _busiest(records: list[Record], round_index: int) -> str:
    served = Counter(r.engine for r in records if r.round == round_index and r.engine)
    return served.most_common(1)[0][0]


async def base(ctx: Ctx, mode: str) -> Base:
    plan = ctx.plan
    await ctx.engines.reset(ctx.session)
    a = await router(ctx, mode, "A")
    idle_mb = rss_bytes(a.pid) / 2**20
    users = Users(plan, ctx.session)
    users.phase = "warm"
    before = await counters(ctx, a)
    await users.rounds(lambda _: a, plan.warm_rounds, gated=True)
    after = await counters(ctx, a)
    await users.complete(ctx.engines.urls)
    wiped = _busiest(users.records, plan.warm_rounds - 1)
    ctx.say(f"# {mode}: restarting {wiped}")
    users.phase = "restart"
    restart_at = time.monotonic()
    await ctx.engines.set_faults(ctx.session, wiped, {"kv_clear": "restart"})
    await users.until(lambda _: a, restart_at + plan.restart_window_s, gated=True)
    ctx.say(f"# {mode}: cold join")
    settings = router_settings(plan, mode, ctx.engines.urls, ctx.engines.kv_port, scoring=ctx.scoring)
    b = ctx.routers.start(settings, f"{mode}-B")
    ready_s = await ctx.routers.ready(ctx.session, b, plan.engines)
    users.phase, users.probe = "join", ctx.engines.urls
    await users.rounds(lambda i: b if i % 2 else a, 1, gated=True)
    await users.rounds(lambda i: a if i % 2 else b, 1, gated=True)
    users.probe = ()
    await users.complete(ctx.engines.urls)
    await ctx.routers.stop(a)
    await ctx.routers.stop(b)
    ctx.keep(mode, users.records)
    phase = {name: [r for r in users.records if r.phase == name] for name in ("warm", "restart", "join")}
    return Base(warm=phase["warm"], predicted=after.predicted_since(before),
                delivered=after.delivered_since(before), wiped=wiped, restart_at=restart_at,
                window=phase["restart"], join_ready_s=ready_s,
                joined=[r for r in phase["join"] if r.replica == b.name],
                warm_peer=[r for r in phase["join"] if r.replica == a.name], slack_tokens=64,
                router_idle_mb=idle_mb)


Sampler = Callable[[], Coroutine[Any, Any, None]]


async def _rounds(ctx: Ctx, mode: str, replica: Replica, during: Sampler | None = None) -> list[Record]:
    users = Users(ctx.plan, ctx.session)
    users.phase = replica.name
    work = users.rounds(lambda _: replica, ctx.plan.warm_rounds, gated=False)
    if during is None:
        await work
    else:
        sampler = asyncio.create_task(during())
        try:
            await work
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
    await users.complete(ctx.engines.urls)
    ctx.keep(mode, users.records)
    return users.records


async def capacity(ctx: Ctx, mode: str, factor: float) -> Capacity:
    await ctx.engines.reset(ctx.session)
    replica = await router(ctx, mode, f"cap{factor:g}", factor)
    idle = ctx.plan.idle_cpu_s
    idle_rate = await _idle_cpu_s(replica.pid, idle) / idle
    cpu, started = cpu_seconds(replica.pid), time.monotonic()
    records = await _rounds(ctx, mode, replica)
    used = cpu_seconds(replica.pid) - cpu - idle_rate * (time.monotonic() - started)
    await ctx.routers.stop(replica)
    ok = [r for r in records if r.ok]
    return Capacity(hit_rate=hit_rate(records), requests=len(records), failed=len(records) - len(ok),
                    cpu_s_per_request=used / max(len(ok), 1))


async def _idle_cpu_s(pid: int, seconds: float) -> float:
    """The router's CPU seconds over `seconds` with no request (health checks, engine scrapes,
    its event subscription): subtracted, at that rate, from what the load's requests cost."""
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return cpu_seconds(pid) - before


async def drop(ctx: Ctx, mode: str) -> Drop:
    plan = ctx.plan
    faults = {"kv_drop_rate": plan.drop_rate, "kv_reorder_rate": plan.reorder_rate}
    await ctx.engines.reset(ctx.session, faults)
    replica = await router(ctx, mode, "drop")
    states: Counter = Counter()

    async def sample() -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
                async with ctx.session.get(replica.url + PATH_HEALTH) as resp:
                    feeds = (await resp.json()).get("kv_events") or {"-": "unsubscribed"}
                    states.update(feeds.values())
            await asyncio.sleep(0.05)
    records = await _rounds(ctx, mode, replica, sample)
    async with ctx.session.get(replica.url + PATH_METRICS) as resp:
        text = await resp.text()
    alive = ctx.routers.alive(replica)
    await ctx.routers.stop(replica)
    await ctx.engines.reset(ctx.session)
    ok = [r for r in records if r.ok]
    return Drop(hit_rate=hit_rate(records), requests=len(records), failed=len(records) - len(ok),
                router_alive=alive, gaps=scrape.gaps(text), fallbacks=scrape.fallbacks(text), states=states)
