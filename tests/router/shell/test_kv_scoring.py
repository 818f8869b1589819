"""The router scoring by KV events over loopback, in front of emulated engines that publish them:
each prompt's token ids from an engine's `/tokenize`, the prediction against what the engine
delivered, the fallbacks (tokenize too slow, a feed not live) counted and shown on `/health`, and
the cold-join readiness gate (issue 19)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp

from contracts import (
    PATH_CHAT,
    PATH_COMPLETIONS,
    ROUTER_KV_FALLBACKS,
    ROUTER_KV_PREDICTED,
    ROUTER_KV_TOKENIZE,
)
from contracts.kv_events import FALLBACK_NO_TOKENS, FEED_UNTRUSTED, KV_SCORING_EVENTS
from emulator.config import EngineConfig, KvEventsSettings
from emulator.runner import EmulatorCluster, run_emulators
from emulator.timing import Timing
from router.settings import HealthSettings, PolicySettings, RouterSettings, StaticEngine
from router.settings import KvEventsSettings as RouterKv
from router.shell.app import RouterApp, create_app
from router.shell.kv_events import Endpoints
from tests.router.harness import json_session, run, until

MODEL = "emu"
SYSTEM = "You are a careful assistant who answers briefly. " * 12  # ~150 tokens of 4 bytes


def _engines() -> EngineConfig:
    return EngineConfig(model=MODEL, gpu_cache_tokens=20_000, max_model_len=8192,
                        timing=Timing(time_scale=0.01), kv_events=KvEventsSettings())


def _router(cluster: EmulatorCluster, **kv: Any) -> RouterApp:
    settings = RouterSettings(
        engines=tuple(StaticEngine(url=u, gpu_cache_tokens=20_000) for u in cluster.urls), models=(MODEL,),
        policy=PolicySettings(kind="prefix"), host="127.0.0.1",
        health=HealthSettings(interval_s=0.1, timeout_s=1.0, unhealthy_after=3, metrics_interval_s=0.1),
        kv_events=RouterKv(**({"enabled": True, "stale_after_s": 2.0, "replay_timeout_s": 2.0} | kv)))
    endpoints = cluster.kv_endpoints
    assert endpoints is not None
    by_url = {url: Endpoints(events=str(e), replay=r)
              for url, e, r in zip(cluster.urls, endpoints["kv_events"], endpoints["kv_replay"], strict=True)}
    return create_app(settings, environ={}, kv_endpoints=lambda url: by_url[url])


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples carrying `labels`."""
    found = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            found += float(line.rsplit(" ", 1)[1])
    return found


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as resp:
        json_body = resp.content_type == "application/json"
        return resp.status, (await resp.json() if json_body else await resp.text())


async def _hits(session: aiohttp.ClientSession, urls: list[str]) -> float:
    """Every engine's GPU prefix-cache hits so far (tokens)."""
    total = 0.0
    for url in urls:
        _, text = await _get(session, url + "/metrics")
        total += _metric(text, "vllm:prefix_cache_hits_total")
    return total


async def _chat(session: aiohttp.ClientSession, base: str, turns: list[str]) -> None:
    messages = [{"role": "system", "content": SYSTEM}]
    for i, turn in enumerate(turns):
        messages.append({"role": "user", "content": turn})
        if i < len(turns) - 1:
            messages.append({"role": "assistant", "content": f"answer {i} " * 8})
    body = {"model": MODEL, "messages": messages, "max_tokens": 4}
    async with session.post(base + PATH_CHAT, json=body) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()


async def _live(session: aiohttp.ClientSession, base: str, engines: int) -> None:
    async def ready() -> bool:
        status, body = await _get(session, base + "/health")
        scoring = list((body.get("kv_scoring") or {}).values())
        return status == 200 and scoring == [KV_SCORING_EVENTS] * engines
    await until(ready, timeout=15)


def test_events_mode_predicts_what_the_engines_deliver() -> None:
    """Conversations routed with the engines' own token ids: every prompt is tokenised by an
    engine (`ok`), each chosen engine is scored by its events, and the tokens predicted cached
    equal the prefix-cache hits the engines report."""
    async def body() -> None:
        async with run_emulators(_engines(), engines=2) as cluster, json_session() as session:
            app = _router(cluster)
            async with app:
                base = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
                await _live(session, base, 2)
                before = await _hits(session, cluster.urls)
                for user in range(4):
                    for rounds in range(1, 4):
                        await _chat(session, base, [f"user {user} question {q} " * 10 for q in range(rounds)])
                        await asyncio.sleep(0.05)  # the step's events reach the router before the next turn
                delivered = await _hits(session, cluster.urls) - before
                _, text = await _get(session, base + "/metrics")
        assert _metric(text, ROUTER_KV_TOKENIZE, outcome="ok") == 12
        predicted = _metric(text, ROUTER_KV_PREDICTED, mode=KV_SCORING_EVENTS)
        assert _metric(text, ROUTER_KV_PREDICTED, mode="approximate") == 0
        assert delivered > 0 and predicted == delivered
    run(body(), timeout=60)


def test_a_completion_is_tokenised_and_ids_given_need_no_call() -> None:
    """A completion's string prompt is tokenised like a chat; a prompt given as token ids is
    scored by those ids without asking an engine."""
    async def body() -> None:
        async with run_emulators(_engines(), engines=1) as cluster, json_session() as session:
            app = _router(cluster)
            async with app:
                base = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
                await _live(session, base, 1)
                for prompt in (SYSTEM, [1, 2, 3, 4] * 20):
                    async with session.post(base + PATH_COMPLETIONS,
                                            json={"model": MODEL, "prompt": prompt, "max_tokens": 2}) as resp:
                        assert resp.status == 200, await resp.text()
                _, text = await _get(session, base + "/metrics")
        assert _metric(text, ROUTER_KV_TOKENIZE, outcome="ok") == 1
        assert _metric(text, ROUTER_KV_TOKENIZE, outcome="given") == 1
    run(body(), timeout=60)


def test_a_tokenize_past_its_bound_falls_back_and_is_counted() -> None:
    """With `/tokenize` unable to answer within the bound, every request is still served, scored
    by the router's estimate: counted as a tokenize timeout and as a `no_tokens` fallback for each
    live candidate; the estimate, kept up to date meanwhile, predicts the conversation's hits."""
    async def body() -> None:
        async with run_emulators(_engines(), engines=2) as cluster, json_session() as session:
            app = _router(cluster, tokenize_timeout_s=1e-6)
            async with app:
                base = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
                await _live(session, base, 2)
                for rounds in range(1, 4):
                    await _chat(session, base, [f"question {q} " * 40 for q in range(rounds)])
                _, text = await _get(session, base + "/metrics")
        assert _metric(text, ROUTER_KV_TOKENIZE, outcome="timeout") == 3
        assert _metric(text, ROUTER_KV_FALLBACKS, reason=FALLBACK_NO_TOKENS) == 3 * 2
        assert _metric(text, ROUTER_KV_PREDICTED, mode=KV_SCORING_EVENTS) == 0
        assert _metric(text, ROUTER_KV_PREDICTED, mode="approximate") > 0
    run(body(), timeout=60)


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def _unreachable_feeds(app: RouterApp) -> None:
    """Point the app's subscriber at sockets nobody serves: the replay gets no answer."""
    assert app.kv_events is not None
    nowhere = f"tcp://127.0.0.1:{_dead_port()}"
    app.kv_events._endpoints = lambda url: Endpoints(events=nowhere, replay=nowhere)


def test_cold_join_waits_for_the_replay_then_an_unanswered_engine_falls_back() -> None:
    """A starting router whose engine's replay socket does not answer is `warming` (503) while the
    feed syncs, then ready once the replay gives up (the engine `untrusted`): `/health` names the
    engine's fallback and its requests count it."""
    async def body() -> None:
        async with run_emulators(_engines(), engines=1) as cluster, json_session() as session:
            app = _router(cluster, cold_join_s=30.0, replay_timeout_s=1.5)
            _unreachable_feeds(app)
            async with app:
                base = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
                status, health = await _get(session, base + "/health")
                assert status == 503 and health["status"] == "warming"
                assert health["kv_scoring"] == {cluster.urls[0]: "syncing"}

                async def ready() -> bool:
                    return (await _get(session, base + "/health"))[0] == 200
                await until(ready, timeout=10)
                _, health = await _get(session, base + "/health")
                assert health["kv_scoring"] == {cluster.urls[0]: FEED_UNTRUSTED}
                await _chat(session, base, ["a question " * 20])
                _, text = await _get(session, base + "/metrics")
        assert _metric(text, ROUTER_KV_FALLBACKS, reason=FEED_UNTRUSTED) == 1
    run(body(), timeout=60)


def test_cold_join_is_bounded_by_cold_join_s() -> None:
    """The gate opens after `cold_join_s` even while the engine's feed is still syncing."""
    async def body() -> None:
        async with run_emulators(_engines(), engines=1) as cluster, json_session() as session:
            app = _router(cluster, cold_join_s=0.3, replay_timeout_s=30.0)
            _unreachable_feeds(app)
            async with app:
                base = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"

                async def ready() -> bool:
                    return (await _get(session, base + "/health"))[0] == 200
                await until(ready, timeout=10)
                _, health = await _get(session, base + "/health")
                assert health["kv_events"] == {cluster.urls[0]: "syncing"}
    run(body(), timeout=60)
