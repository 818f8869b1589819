"""Mid-stream migration against real emulated engines: an engine that dies or stalls after
part of a stream has been sent, and the client's stream, continued on another engine, is
byte for byte the stream an undisturbed engine sends for the same request (issue 18).

The emulator generates from (context, position) alone at temperature 0, stamps `id` from the
request's `x-request-id` and `created` from its config (pinned here), so the uninterrupted
twin is the same request sent straight to a healthy engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from contracts import PATH_CHAT, PATH_COMPLETIONS, SSE_DONE
from emulator.config import EngineConfig, Timing
from emulator.faults import Faults
from emulator.runner import EmulatorCluster, run_emulators
from router.settings import (
    Deadlines,
    DeadlineSettings,
    HealthSettings,
    Limits,
    PolicySettings,
    RouterSettings,
    StaticEngine,
)
from router.shell.app import RouterApp, create_app
from tests.router.harness import run, until

MODEL = "emu"
CREATED = 1_760_000_000
HEALTH = HealthSettings(interval_s=0.1, timeout_s=1.0, unhealthy_after=3, metrics_interval_s=0.1)
QUICK = DeadlineSettings(default=Deadlines(first_byte_s=2.0, inter_chunk_s=0.3, whole_s=20.0))


@asynccontextmanager
async def _cluster(**limits: Any) -> AsyncIterator[tuple[RouterApp, str, EmulatorCluster]]:
    config = EngineConfig(model=MODEL, timing=Timing(time_scale=0.02), created=CREATED)
    async with run_emulators(config, engines=2) as cluster:
        settings = RouterSettings(engines=tuple(StaticEngine(url=u) for u in cluster.urls), models=(MODEL,),
                                  policy=PolicySettings(kind="round_robin"), host="127.0.0.1", health=HEALTH,
                                  deadlines=QUICK, limits=Limits(**limits))
        async with create_app(settings) as app:
            port = await app.serve("127.0.0.1", 0)
            await until(lambda: app.registry.healthy_count() == 2)
            yield app, f"http://127.0.0.1:{port}", cluster


async def _stream(session: aiohttp.ClientSession, base: str, path: str, body: dict[str, Any],
                  request_id: str) -> bytes:
    headers = {"content-type": "application/json", "x-request-id": request_id}
    async with session.post(base + path, data=orjson.dumps(body), headers=headers) as resp:
        assert resp.status == 200
        return await resp.read()


async def _through_fault(path: str, body: dict[str, Any], fault: Faults,
                         **limits: Any) -> tuple[list[tuple[bytes, bytes]], RouterApp]:
    """Two requests through the router while engine 0 shows `fault` (round robin sends one of
    them to it first), each with its twin: the same request straight from engine 1, undisturbed."""
    async with _cluster(**limits) as (app, base, cluster), aiohttp.ClientSession() as session:
        await cluster.set_faults(0, fault)
        got = [await _stream(session, base, path, body, f"req-{n}") for n in range(2)]
        twins = [await _stream(session, cluster.urls[1], path, body, f"req-{n}") for n in range(2)]
    return list(zip(got, twins, strict=True)), app


def test_chat_stream_survives_its_engine_dying_byte_identical() -> None:
    """Engine killed after 8 of 24 tokens (its connections reset): the stream goes on from the
    other engine, usage restated for the whole answer, and equals the uninterrupted stream."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "tell me a story"}], "stream": True,
            "temperature": 0, "max_tokens": 24, "stream_options": {"include_usage": True}}

    async def go() -> None:
        pairs, app = await _through_fault(PATH_CHAT, body, Faults(die_after_tokens=8))
        assert app.metrics.migrations.value(app.metrics.registry, (MODEL, "completed")) == 1
        for got, twin in pairs:
            assert got == twin
            assert got.endswith(SSE_DONE) and b'"finish_reason":"length"' in got
            last_usage = [e for e in got.split(b"\n\n") if b'"usage"' in e][-1]
            assert orjson.loads(last_usage.removeprefix(b"data: "))["usage"]["completion_tokens"] == 24
    run(go(), timeout=60)


def test_completion_stream_survives_a_stall_past_the_inter_chunk_deadline_byte_identical() -> None:
    """Engine stalls after 5 tokens (connection open, nothing sent): at the 0.3 s inter-chunk
    deadline the stream moves on, and equals the uninterrupted stream."""
    body = {"model": MODEL, "prompt": "once upon a time", "stream": True, "temperature": 0, "max_tokens": 16}

    async def go() -> None:
        pairs, app = await _through_fault(PATH_COMPLETIONS, body, Faults(stall_after_tokens=5))
        reg = app.metrics.registry
        moved = app.metrics.migrations.value(reg, (MODEL, "completed"))
        misses = sum(app.metrics.deadline_misses.value(reg, (u, "inter_chunk")) for u in app.registry.states)
        assert moved >= 1 and misses == moved
        for got, twin in pairs:
            assert got == twin and got.endswith(SSE_DONE)
    run(go(), timeout=60)


def test_unsupported_request_ends_with_one_error_event_and_done() -> None:
    """A stream a continuation cannot reproduce (two choices) ends cleanly: what was sent, one
    error event naming why, `data: [DONE]`."""
    body = {"model": MODEL, "prompt": ["a", "b"], "stream": True, "temperature": 0, "max_tokens": 16}

    async def go() -> None:
        pairs, app = await _through_fault(PATH_COMPLETIONS, body, Faults(die_after_tokens=4))
        assert app.metrics.migrations.value(app.metrics.registry, (MODEL, "unsupported")) == 1
        broken = [got for got, twin in pairs if got != twin]
        assert len(broken) == 1 and broken[0].endswith(b"\n\n" + SSE_DONE)
        error = orjson.loads(broken[0].split(b"\n\n")[-3].removeprefix(b"data: "))["error"]
        assert "cannot continue on another engine (a prompt that is not one string)" in error["message"]
    run(go(), timeout=60)


def test_stream_the_engine_fails_with_an_error_event_moves_on_byte_identical() -> None:
    """vLLM ends a stream whose generation failed (its engine core dead) with an error event and
    `data: [DONE]`, not a reset: that too migrates, the engine's error never reaching the client."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "and then"}], "stream": True,
            "temperature": 0, "max_tokens": 20}

    async def go() -> None:
        pairs, app = await _through_fault(PATH_CHAT, body, Faults(fail_rate=1.0, fail_after_tokens=6))
        assert app.metrics.migrations.value(app.metrics.registry, (MODEL, "completed")) >= 1
        for got, twin in pairs:
            assert got == twin and b'"error"' not in got
    run(go(), timeout=60)
