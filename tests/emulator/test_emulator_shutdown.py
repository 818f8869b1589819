"""SIGTERM as vLLM 0.33 handles it: `--shutdown-timeout 0` aborts open requests at once; N > 0
aborts new ones, lets open ones finish within N s, keeps /health at 200, then cuts what is left."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

import contracts
from emulator import wire
from emulator.config import EngineConfig
from emulator.engine import EngineRuntime
from emulator.runner import run_emulators
from emulator.scheduler import Emit, Step
from emulator.timing import Timing

MODEL = "test/model"


def _config(shutdown_timeout_s: int) -> EngineConfig:
    return EngineConfig(model=MODEL, gpu_cache_tokens=50_000, timing=Timing(time_scale=0.05),
                        shutdown_timeout_s=shutdown_timeout_s)


def _body(tokens: int) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": tokens,
            "stream": True}


def _finishes(data: bytes) -> list[str | None]:
    events = [e.strip().removeprefix(b"data: ") for e in data.split(b"\n\n") if e.strip()]
    assert events[-1] == b"[DONE]"
    return [c["choices"][0]["finish_reason"] for c in map(orjson.loads, events[:-1]) if c["choices"]]


async def _refused(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as fresh, fresh.get(url + contracts.PATH_HEALTH) as resp:
            await resp.read()
    except aiohttp.ClientConnectionError:
        return True
    return False


def test_timeout_zero_aborts_open_streams_with_a_final_chunk_and_done():
    """With 0 an open stream ends at once: last chunk finish_reason "abort", then [DONE]; the
    engine then stops listening."""
    async def main() -> None:
        async with run_emulators(_config(0)) as cluster, aiohttp.ClientSession() as session:
            server = cluster.servers[0]
            async with session.post(server.url + contracts.PATH_CHAT, json=_body(40_000)) as resp:
                await resp.content.readline()
                aborted, data = await asyncio.gather(server.shutdown(), resp.read())  # the client reads on
                finishes = _finishes(data)
            assert aborted == 1 and finishes[-1] == "abort" and finishes.count("abort") == 1
            assert await _refused(server.url)
    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_drain_finishes_open_streams_aborts_new_ones_and_keeps_health():
    """With N > 0 an open stream runs to its end, a request arriving meanwhile is aborted on
    arrival (vLLM's `_reject_add_in_shutdown`), /health stays 200, then the listener closes."""
    async def main() -> None:
        async with run_emulators(_config(30)) as cluster, aiohttp.ClientSession() as session:
            server = cluster.servers[0]
            async with session.post(server.url + contracts.PATH_CHAT, json=_body(40)) as resp:
                await resp.content.readline()
                draining = asyncio.ensure_future(server.shutdown())
                await asyncio.sleep(0)  # the drain has begun
                async with session.get(server.url + contracts.PATH_HEALTH) as health:
                    assert health.status == 200
                async with session.post(server.url + contracts.PATH_CHAT, json=_body(40)) as late:
                    assert _finishes(await late.read()) == [None, "abort"]  # the role chunk, then the abort
                finishes = _finishes(await resp.read())
            assert finishes[-1] == "length" and await draining == 0
            assert await _refused(server.url)
    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_drain_cuts_what_outlives_its_timeout():
    """A stream longer than the timeout loses its connection when it expires (vLLM kills the
    engine core and cancels its HTTP server): no final chunk, no [DONE]."""
    async def main() -> None:
        async with run_emulators(_config(1)) as cluster, aiohttp.ClientSession() as session:
            server = cluster.servers[0]
            async with session.post(server.url + contracts.PATH_CHAT, json=_body(40_000)) as resp:
                await resp.content.readline()
                cut, data = await asyncio.gather(server.shutdown(), _read_until_broken(resp))
            assert cut == 1 and data is None
    asyncio.run(asyncio.wait_for(main(), 20))


async def _read_until_broken(resp: aiohttp.ClientResponse) -> bytes | None:
    """The whole body, or None when the connection broke before its end."""
    try:
        return await resp.read()
    except aiohttp.ClientPayloadError:
        return None


def test_a_token_planned_before_an_abort_does_not_undo_it():
    """A step planned before `abort_all` and delivered after it leaves the request aborted (a late
    token used to clear `finish_reason`, so the drained stream hung until its connection was cut)."""
    async def main() -> None:
        runtime = EngineRuntime(_config(0))
        parsed = wire.parse_generation(orjson.dumps(_body(10)), "chat", runtime.config)
        channel = runtime.submit(parsed, "r1")
        assert runtime.abort_all() == 1
        runtime._deliver(Step(duration=0.0, emits=(Emit(key=channel.key, first=True, finish_reason=None),),
                              admitted=(), seqs=1, prefill_tokens=0), 0.0)
        assert channel.finish_reason == "abort" and channel.tokens == 0
        assert await asyncio.wait_for(channel.wait_beyond(0), 1) == 0
    asyncio.run(main())
