"""The router with its real policies in front of the vLLM engine emulator (emulator/)."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from contracts import PATH_CHAT, SSE_DONE
from emulator.config import EngineConfig
from emulator.faults import Faults
from emulator.runner import run_emulators
from emulator.timing import Timing
from router.settings import HealthSettings, PolicySettings, RouterSettings, StaticEngine
from router.shell.app import create_app
from tests.router.harness import json_session, run, until

MODEL = "emu"
SYSTEM = "You are a careful assistant. " * 40


FAST_EVICTION = HealthSettings(interval_s=0.1, timeout_s=0.3, metrics_interval_s=0.1)
STEADY_HEALTH = HealthSettings(interval_s=0.1, timeout_s=1.0, unhealthy_after=3, metrics_interval_s=0.1)
"""For placement tests: a live engine is never evicted because the shared test process stalled
for a moment (the placement claim is about routing, not health checks)."""


def _settings(urls: list[str], kind: str, health: HealthSettings = FAST_EVICTION) -> RouterSettings:
    return RouterSettings(engines=tuple(StaticEngine(url=u) for u in urls), models=(MODEL,),
                          policy=PolicySettings(kind=kind), default_gpu_cache_tokens=50_000, host="127.0.0.1",
                          health=health)


async def _journal(session: aiohttp.ClientSession, urls: list[str]) -> dict[str, tuple[int, dict]]:
    """Request id -> (engine index, record), from every engine's journal."""
    found: dict[str, tuple[int, dict]] = {}
    for index, url in enumerate(urls):
        async with session.get(url + "/emulator/requests") as resp:
            for record in (await resp.json())["requests"]:
                found[record["request_id"]] = (index, record)
    return found


async def _chat_ok(session: aiohttp.ClientSession, url: str, messages: list[dict],
                   headers: dict[str, str] | None = None) -> None:
    """One short chat through the router; it must succeed."""
    chat = {"model": MODEL, "messages": messages, "max_tokens": 2}
    async with session.post(url + PATH_CHAT, json=chat, headers=headers) as resp:
        assert resp.status == 200


HI = [{"role": "user", "content": "hi"}]


def test_prefix_policy_keeps_each_conversation_on_one_engine_and_hits_its_cache() -> None:
    """Multi-round chats through the real `prefix` policy stay on one engine and reuse its KV cache."""
    async def body() -> None:
        config = EngineConfig(model=MODEL, gpu_cache_tokens=50_000, timing=Timing(time_scale=0.001))
        async with run_emulators(config, engines=3) as cluster, \
                create_app(_settings(cluster.urls, "prefix", health=STEADY_HEALTH)) as app, \
                json_session() as s:
            url = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
            ids: dict[int, list[str]] = {}
            for round_ in range(3):
                for user in range(5):  # 5 users on 3 engines: round-robin would rotate them
                    history = [{"role": "system", "content": SYSTEM},
                               {"role": "user", "content": f"user {user} history " * 60}]
                    history += [{"role": "user", "content": f"question {r}"} for r in range(round_ + 1)]
                    chat = {"model": MODEL, "messages": history, "max_tokens": 4, "stream": user % 2 == 0}
                    async with s.post(url + PATH_CHAT, json=chat) as resp:
                        assert resp.status == 200
                        data = await resp.read()
                    first = data.split(b"\n\n")[0].removeprefix(b"data: ") if chat["stream"] else data
                    assert not chat["stream"] or data.endswith(SSE_DONE)
                    ids.setdefault(user, []).append(orjson.loads(first)["id"].removeprefix("chatcmpl-"))
            journal = await _journal(s, cluster.urls)
        engines_per_user = {user: {journal[i][0] for i in rounds} for user, rounds in ids.items()}
        assert all(len(engines) == 1 for engines in engines_per_user.values()), engines_per_user
        later_hits = [journal[i][1]["gpu_hit_tokens"] for rounds in ids.values() for i in rounds[1:]]
        assert len(later_hits) == 10 and all(hit > 0 for hit in later_hits)
    run(body())


def test_dead_emulated_engine_is_retried_around_and_evicted() -> None:
    """A dead engine's requests go elsewhere at once, and it leaves rotation."""
    async def body() -> None:
        config = EngineConfig(model=MODEL, timing=Timing(time_scale=0.001))
        async with run_emulators(config, engines=2) as cluster, \
                create_app(_settings(cluster.urls, "round_robin")) as app, json_session() as s:
            url = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
            await cluster.set_faults(0, Faults(dead=True))
            for _ in range(4):
                await _chat_ok(s, url, HI)
            await until(lambda: not app.registry.states[cluster.urls[0]].healthy)
            await cluster.set_faults(0, Faults())
            await until(lambda: app.registry.states[cluster.urls[0]].healthy)
    run(body())


def test_request_ids_reach_the_engine_and_other_client_headers_do_not() -> None:
    """x-request-id passes through to the engine (its journal finds it); api keys stay at the router."""
    async def body() -> None:
        config = EngineConfig(model=MODEL, timing=Timing(time_scale=0.001))
        async with run_emulators(config, engines=2) as cluster, \
                create_app(_settings(cluster.urls, "round_robin")) as app, json_session() as s:
            url = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
            sent = [f"bench-{i}" for i in range(4)]
            for request_id in sent:
                await _chat_ok(s, url, HI, {"x-request-id": request_id, "x-private": "no"})
            journal = await _journal(s, cluster.urls)
        assert set(sent) <= set(journal)
        assert {journal[i][0] for i in sent} == {0, 1}
    run(body())


def test_forwarded_headers_are_only_the_allowlisted_ones() -> None:
    """Only request-id and trace-context headers (plus the body's content type) go upstream."""
    from router.shell.proxy import forwarded_headers

    sent = forwarded_headers({b"x-request-id": b"r1", b"traceparent": b"00-a-b-01", b"authorization": b"k"})
    assert sent == {"content-type": "application/json", "x-request-id": "r1", "traceparent": "00-a-b-01"}
    assert forwarded_headers({b"authorization": b"Bearer k"}) == {"content-type": "application/json"}


def test_router_metrics_mirror_the_engines_prefix_cache_counters() -> None:
    """The router's /metrics carries each engine's prefix-cache counters, equal to the engine's own."""
    from bench.metrics_scrape import parse_prefix_counters, total

    async def body() -> None:
        config = EngineConfig(model=MODEL, timing=Timing(time_scale=0.001))
        async with run_emulators(config, engines=2) as cluster, \
                create_app(_settings(cluster.urls, "round_robin")) as app, json_session() as s:
            url = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
            for i in range(6):
                question = {"role": "user", "content": f"q{i}"}
                await _chat_ok(s, url, [{"role": "system", "content": SYSTEM}, question])
            engines = {}
            for engine_url in cluster.urls:
                async with s.get(engine_url + "/metrics") as resp:
                    engines[engine_url] = parse_prefix_counters(await resp.text())
            expected = total(engines)
            assert expected.queries > 0 and expected.hits > 0

            async def mirrored():
                async with s.get(url + "/metrics") as resp:
                    return parse_prefix_counters(await resp.text())
            found = None
            for _ in range(50):  # the router scrapes every 0.1 s here; poll with a bound
                found = await mirrored()
                if found == expected:
                    break
                await asyncio.sleep(0.1)
            assert found == expected
    run(body())


def test_the_engines_kv_cache_usage_reaches_the_cost_models_engine_state() -> None:
    """The emulator's `vllm:kv_cache_usage_perc` (vLLM 0.33's name) is scraped into the engine's
    state while a long request holds its KV, and reads 0 again once it is done."""
    async def body() -> None:
        config = EngineConfig(model=MODEL, gpu_cache_tokens=4_096, timing=Timing(time_scale=1.0))
        async with run_emulators(config, engines=1) as cluster, \
                create_app(_settings(cluster.urls, "prefix", health=STEADY_HEALTH)) as app, \
                json_session() as s:
            url = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
            state = app.registry.states[cluster.urls[0]]
            chat = {"model": MODEL, "messages": [{"role": "user", "content": "tokens " * 1500}],
                    "max_tokens": 400, "stream": True, "ignore_eos": True}  # ~5 s of decode at A100 speed
            async with s.post(url + PATH_CHAT, json=chat) as resp:
                assert resp.status == 200
                await resp.content.readline()  # the first event: the request holds its KV now
                await until(lambda: state.kv_usage > 0.3)
                assert state.kv_usage <= 1.0
            await until(lambda: state.kv_usage == 0.0, timeout=10.0)  # the client left: aborted
    run(body())
