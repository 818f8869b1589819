"""A real SIGTERM to an emulator process drains as vLLM 0.33's `--shutdown-timeout` says: 0 ends
the open stream at once with an abort chunk and [DONE]; N lets it finish; then the process exits 0."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import orjson
import pytest

import contracts
from emulator.runner import EmulatorProcess

MODEL = "test/model"


def _finishes(data: bytes) -> list[str | None]:
    events = [e.strip().removeprefix(b"data: ") for e in data.split(b"\n\n") if e.strip()]
    assert events[-1] == b"[DONE]"
    return [c["choices"][0]["finish_reason"] for c in map(orjson.loads, events[:-1]) if c["choices"]]


async def _stream_through_sigterm(proc: EmulatorProcess, max_tokens: int) -> tuple[list[str | None], int]:
    """Open a stream, SIGTERM the process after its first chunk, read the rest; the finish
    reasons seen and the number of content tokens."""
    body = {"model": MODEL, "prompt": "once upon a time", "max_tokens": max_tokens, "stream": True,
            "ignore_eos": True}
    async with aiohttp.ClientSession() as session, \
            session.post(proc.urls[0] + contracts.PATH_COMPLETIONS, json=body) as resp:
        first = await resp.content.readline()
        proc.send_signal(signal.SIGTERM)
        data = first + await resp.read()
    finishes = _finishes(data)
    return finishes, len(finishes)


@pytest.mark.parametrize(("timeout_s", "tokens", "last"), [(0, 20_000, "abort"), (20, 40, "length")])
def test_sigterm_drains_per_shutdown_timeout_and_exits_cleanly(timeout_s, tokens, last):
    """0: the stream ends at once, last chunk `abort`; N: it runs to its `length` end; exit 0."""
    with EmulatorProcess(args=["--model", MODEL, "--time-scale", "0.05",
                               "--shutdown-timeout", str(timeout_s)]) as proc:
        finishes, count = asyncio.run(asyncio.wait_for(_stream_through_sigterm(proc, tokens), 30))
        assert finishes[-1] == last and finishes.count(last) == 1
        if last == "length":
            assert count == tokens  # every token arrived
        assert proc.wait(20) == 0
