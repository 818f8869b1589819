"""Weighted rollouts through the real router on loopback fake engines: a request naming the
stable name reaches an engine under one version's name, the answer names what the client sent,
`/v1/models` shows the stable name, and a settings change 90/10 -> 0/100 made the way a
`pulumi up` makes it (new routers, the old ones draining) answers every request 200."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp

from contracts import HEADER_USER_ID, PATH_CHAT, PATH_COMPLETIONS, PATH_MODELS, SSE_DONE
from tests.router.fake_engine import FakeEngine
from tests.router.harness import json_session, run, running, settings_for, until

VERSIONS = ["sql--v1", "sql--v2"]
ADAPTERS = dict.fromkeys(VERSIONS, "m")


def _engines(n: int, **kw: object) -> list[FakeEngine]:
    engines = [FakeEngine(model="m", name=f"e{i}", **kw) for i in range(n)]  # type: ignore[arg-type]
    for engine in engines:
        engine.adapters = list(VERSIONS)
        engine.echo_model = True
    return engines


def _chat(user: int, stream: bool = False) -> dict:
    return {"model": "sql", "stream": stream, "messages": [{"role": "user", "content": f"question {user}"}]}


def test_the_stable_name_is_rewritten_by_weight_and_answered_under_its_own_name() -> None:
    """300 users at 90/10: about a tenth reach the engine as sql--v2, the rest as sql--v1; each
    user's rounds keep one version; whole and streamed answers say `model: sql`; `/v1/models`
    lists `sql` (parent m) and not the versions, which are still served when named."""
    async def body() -> None:
        (engine,) = _engines(1)
        await engine.start()
        settings = settings_for([engine.url], adapters=ADAPTERS,
                                rollouts={"sql": {"sql--v1": 90, "sql--v2": 10}})
        async with running(settings) as (app, url), json_session() as s:
            await until(lambda: bool(app.registry.candidates("sql--v1")))
            by_user: dict[int, set[str]] = {}
            for _round in range(2):
                for user in range(300):
                    headers = {HEADER_USER_ID: f"u{user}"}
                    async with s.post(url + PATH_CHAT, json=_chat(user), headers=headers) as r:
                        assert r.status == 200 and (await r.json())["model"] == "sql"
                    by_user.setdefault(user, set()).add(engine.bodies[-1]["model"])
            assert all(len(v) == 1 for v in by_user.values())
            share = Counter(next(iter(v)) for v in by_user.values())
            assert set(share) == set(VERSIONS) and 0.04 < share["sql--v2"] / 300 < 0.17, share
            async with s.post(url + PATH_CHAT, json=_chat(7, stream=True)) as r:
                data = await r.read()
            assert data.endswith(SSE_DONE) and b'"model":"sql"' in data and b"sql--v" not in data
            async with s.post(url + PATH_COMPLETIONS, json={"model": "sql--v2", "prompt": "x"}) as r:
                assert r.status == 200 and (await r.json())["model"] == "sql--v2"  # a version named directly
            async with s.get(url + PATH_MODELS) as r:
                cards = {c["id"]: c for c in (await r.json())["data"]}
            assert sorted(cards) == ["m", "sql"] and cards["sql"]["parent"] == "m"
        await engine.stop()
    run(body())


async def _user(s: aiohttp.ClientSession, pick_url, user: int, stop: asyncio.Event,
                statuses: Counter[int], seen: list[tuple[float, str, str]], clock) -> None:
    """One user's conversation, round after round, to whichever router the 'Service' lists."""
    while not stop.is_set():
        url = pick_url()
        started = clock()
        try:
            async with s.post(url + PATH_CHAT, json=_chat(user, stream=True)) as r:
                data = await r.read()
                statuses[r.status] += 1
                ok = r.status == 200 and data.endswith(SSE_DONE)
                statuses[-1] += 0 if ok else 1
        except aiohttp.ClientError:
            statuses[0] += 1
            continue
        seen.append((started, url, data.decode()))


def test_a_rollout_90_10_to_0_100_with_requests_in_flight_answers_every_request() -> None:
    """24 users stream through two routers at 90/10; new routers at 0/100 start, the client's
    'Service' switches to them and the old ones drain with streams open. Every request is a 200
    ending in [DONE]; requests sent to the new routers after the switch all reach sql--v2, and
    streams open on the old routers at the switch still finish (on sql--v1 or sql--v2)."""
    async def body() -> None:
        engines = _engines(2, chunks=8, chunk_delay=0.03)
        for engine in engines:
            await engine.start()
        urls = [e.url for e in engines]
        old = settings_for(urls, adapters=ADAPTERS, rollouts={"sql": {"sql--v1": 90, "sql--v2": 10}})
        new = settings_for(urls, adapters=ADAPTERS, rollouts={"sql": {"sql--v1": 0, "sql--v2": 100}})
        loop = asyncio.get_running_loop()
        statuses: Counter[int] = Counter()
        seen: list[tuple[float, str, str]] = []
        stop = asyncio.Event()
        async with running(old) as (a1, u1), running(old) as (a2, u2), json_session() as s:
            listed = [u1, u2]
            turn = iter(range(10**9))

            def pick_url() -> str:
                return listed[next(turn) % len(listed)]

            for app in (a1, a2):
                await until(lambda app=app: bool(app.registry.candidates("sql--v2")))
            users = [asyncio.ensure_future(_user(s, pick_url, u, stop, statuses, seen, loop.time))
                     for u in range(24)]
            await until(lambda: len(seen) >= 48, timeout=20)
            async with running(new) as (b1, v1), running(new) as (b2, v2):
                for app in (b1, b2):
                    await until(lambda app=app: bool(app.registry.candidates("sql--v2")))
                open_at_switch = a1.open_requests + a2.open_requests
                listed[:] = [v1, v2]  # the endpoints change: new requests go to the new routers
                switch = loop.time()
                drained = await asyncio.gather(a1.drain(timeout=20), a2.drain(timeout=20))
                marks = [len(e.bodies) for e in engines]  # the old routers have nothing open now
                await until(lambda: sum(1 for t, _, _ in seen if t > switch) >= 48, timeout=20)
                stop.set()
                await asyncio.gather(*users)
        assert drained == [True, True] and open_at_switch > 0
        assert statuses[-1] == 0 and statuses[0] == 0 and set(statuses) <= {200, -1, 0}, statuses
        after = [(url, text) for t, url, text in seen if t > switch]
        assert after and all(url in (v1, v2) for url, _ in after)
        bodies = [b["model"] for e in engines for b in e.bodies]
        assert Counter(bodies)["sql--v1"] > 0  # the old split served some conversations on v1
        later = [b["model"] for e, mark in zip(engines, marks, strict=True) for b in e.bodies[mark:]]
        assert len(later) >= 40 and set(later) == {"sql--v2"}
        for engine in engines:
            await engine.stop()
    run(body())
