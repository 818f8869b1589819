"""Issue 3's done check: the seed's shape, scaled down, through the real router (prefix
policy) to four emulated engines on loopback; the run completes, reports percentiles and a
cache hit rate that agrees with the engines' own counters."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bench.config import BenchConfig
from bench.runner import run_benchmark
from contracts import PATH_METRICS, PATH_MODELS
from emulator.config import EngineConfig
from emulator.runner import run_emulators
from emulator.timing import Timing
from router.settings import HealthSettings, PolicySettings, RouterSettings, StaticEngine
from router.shell.app import create_app

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# 16 users x 3 rounds, 1k shared system prompt, 2k history, 20-token answers; engines 20x
# faster than an A100 with a GPU tier small enough that the 4 engines must be routed well.
ENGINE = EngineConfig(model=MODEL, gpu_cache_tokens=24_000, timing=Timing(time_scale=0.05))


async def _served(session: aiohttp.ClientSession, url: str, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        async with session.get(url + PATH_MODELS) as resp:
            if resp.status == 200 and (await resp.json())["data"]:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"router at {url} listed no model within {deadline_s} s")


async def _engine_stats(session: aiohttp.ClientSession, urls: list[str]) -> tuple[int, int]:
    """The engines' own token counters (/emulator/stats, not /metrics): (queried, GPU hits)."""
    queried = hits = 0
    for url in urls:
        async with session.get(url + "/emulator/stats") as resp:
            body = await resp.json()
        queried += body["queried_tokens"]
        hits += body["gpu_hit_tokens"]
    return queried, hits


async def _scenario():
    async with run_emulators(ENGINE, engines=4) as cluster, aiohttp.ClientSession() as session:
        settings = RouterSettings(
            engines=tuple(StaticEngine(url=u) for u in cluster.urls), host="127.0.0.1",
            policy=PolicySettings(kind="prefix"),
            health=HealthSettings(interval_s=0.1, timeout_s=0.5, metrics_interval_s=0.2),
        )
        app = create_app(settings, environ={})
        async with app:
            router_url = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
            await _served(session, router_url)
            before = await _engine_stats(session, cluster.urls)
            config = BenchConfig(
                base_url=router_url, users=16, rounds=3, system_prompt_tokens=1000, history_tokens=2000,
                question_tokens=20, answer_tokens=20, qps=(12.0,), duration_s=3.0, drain_s=10.0,
                # No warm-up: the engines' counters then cover exactly the measured point.
                metrics_urls=tuple(u + PATH_METRICS for u in cluster.urls), warmup=False,
            )
            result = await run_benchmark(config)
            after = await _engine_stats(session, cluster.urls)
    return result, before, after


def test_four_engine_run_reports_percentiles_and_a_hit_rate_matching_the_engines():
    """All finish, percentiles are reported, the hit rate equals the engines' own token counters."""
    result, before, after = asyncio.run(asyncio.wait_for(_scenario(), 60))
    stats = result.points[0].stats
    assert result.model == MODEL and len(result.metrics_urls) == 4
    # 12 QPS x 3 s offers 36 launches; a late answer may push a user's round out of the window.
    assert 30 <= stats.launched <= 36 and stats.finished == stats.launched and stats.errors == 0
    assert stats.ttft.p50 <= stats.ttft.p90 <= stats.ttft.p99 and stats.itl.count == stats.finished * 19
    expected = (after[1] - before[1]) / (after[0] - before[0])
    assert abs(stats.cache_hit_rate - expected) < 1e-9
    assert 0.3 < stats.cache_hit_rate < 1.0
