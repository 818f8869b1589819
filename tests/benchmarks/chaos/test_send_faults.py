"""The harness's client and judge against a loopback emulated engine with known faults: what
must be counted is counted (this does not depend on the router), and an undisturbed stream is
exactly its computed twin."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from benchmarks.chaos.load import send
from benchmarks.chaos.plan import CREATED
from benchmarks.chaos.tally import FAILED, OK, TRUNCATED, classify
from benchmarks.chaos.workload import Conversation, Request
from emulator.config import EngineConfig
from emulator.faults import Faults
from emulator.runner import run_emulators
from emulator.timing import Timing

MODEL = "test/model"
CONFIG = EngineConfig(model=MODEL, gpu_cache_tokens=50_000, created=CREATED, timing=Timing(time_scale=0.05))


def _requests(count: int) -> list[Request]:
    talk = Conversation(0, model=MODEL, prompt_tokens=16, history_rounds=2, max_tokens=12, created=CREATED)
    return [talk.next_request() for _ in range(count)]


def _judge(faults: Faults, count: int = 3, read_timeout_s: float = 1.0) -> list[tuple[str, bool, int]]:
    async def main() -> list[tuple[str, bool, int]]:
        async with run_emulators(CONFIG) as cluster, aiohttp.ClientSession() as session:
            await cluster.set_faults(0, faults)
            out = []
            for request in _requests(count):
                seen = await send(session, cluster.urls[0], request, read_timeout_s)
                verdict = classify(seen, request.twin)
                out.append((verdict.outcome, verdict.mismatch, verdict.tokens))
            return out
    return asyncio.run(asyncio.wait_for(main(), 30))


def test_undisturbed_streams_are_their_computed_twins():
    """Multi-round requests through a healthy engine: every one OK and its body byte-identical
    to its computed twin (`classify` compares a complete stream's bytes)."""
    assert _judge(Faults(), count=4) == [(OK, False, 12)] * 4


@pytest.mark.parametrize(("faults", "expected"), [
    (Faults(status=503), (FAILED, False, 0)),
    (Faults(stall=True), (FAILED, False, 0)),  # hung: no head before the client's patience ends
    (Faults(stall_after_tokens=5), (TRUNCATED, False, 5)),  # silent past the read timeout
    (Faults(fail_rate=1.0, fail_after_tokens=4), (FAILED, False, 4)),  # the engine's error event
])
def test_faults_are_counted_where_they_must_be(faults, expected):
    """Each fault lands in exactly the outcome its definition says, with the tokens that came."""
    assert _judge(faults, count=2) == [expected] * 2


def test_an_engine_dying_mid_stream_truncates_the_stream():
    """`die_after_tokens`: the connection is reset after the head: truncated, with what came
    being the twin's prefix (no mismatch); the engine is dead afterwards (connection refused)."""
    got = _judge(Faults(die_after_tokens=6), count=2)
    assert got[0] == (TRUNCATED, False, 6) and got[1] == (FAILED, False, 0)
