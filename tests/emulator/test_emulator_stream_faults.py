"""Faults mid-stream and on /health, over loopback: a stream that stalls, an engine that dies
after N tokens, a slow /health."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

import contracts
from emulator.config import EngineConfig
from emulator.faults import Faults
from emulator.runner import run_emulators
from emulator.timing import Timing

MODEL = "test/model"
CONFIG = EngineConfig(model=MODEL, gpu_cache_tokens=50_000, timing=Timing(time_scale=0.01))


def _body() -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50, "stream": True}


async def _token_events(resp: aiohttp.ClientResponse) -> int:
    """Content events read before the stream stops (read timeout) or breaks."""
    seen = 0
    try:
        async for line in resp.content:
            seen += line.startswith(b"data: {") and b'"content":"' in line and b'"role"' not in line
    except (TimeoutError, aiohttp.ClientError):
        pass
    return seen


def _run(faults: Faults, check) -> None:
    async def main() -> None:
        async with run_emulators(CONFIG) as cluster, aiohttp.ClientSession() as session:
            await cluster.set_faults(0, faults)
            await check(cluster, session)
    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_stall_after_n_tokens_keeps_the_connection_and_sends_nothing_more():
    """`stall_after_tokens`: N tokens arrive, then silence (the client's read times out)."""
    async def check(cluster, session) -> None:
        async with session.post(cluster.urls[0] + contracts.PATH_CHAT, json=_body(),
                                timeout=aiohttp.ClientTimeout(sock_read=0.5)) as resp:
            assert await _token_events(resp) == 3
    _run(Faults(stall_after_tokens=3), check)


def test_dying_after_n_tokens_resets_the_stream_and_the_engine_refuses():
    """`die_after_tokens`: the stream breaks after N tokens and the engine is dead."""
    async def check(cluster, session) -> None:
        async with session.post(cluster.urls[0] + contracts.PATH_CHAT, json=_body()) as resp:
            assert await _token_events(resp) == 4
        assert cluster.servers[0].runtime.faults.dead
    _run(Faults(die_after_tokens=4), check)


@pytest.mark.parametrize(("timeout_s", "answers"), [(0.2, False), (5.0, True)])
def test_a_slow_health_answers_only_after_its_delay(timeout_s, answers):
    """`health_delay_s`: /health answers 200, but not before the delay."""
    async def check(cluster, session) -> None:
        try:
            async with session.get(cluster.urls[0] + contracts.PATH_HEALTH,
                                   timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                got = resp.status == 200
        except TimeoutError:
            got = False
        assert got is answers
    _run(Faults(health_delay_s=1.0), check)
