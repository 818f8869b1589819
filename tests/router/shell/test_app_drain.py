"""The router's drain on SIGTERM: it keeps serving open streams (and requests on connections
already open) for `drain_s`, whichever engine serves them, then ends."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from contracts import PATH_CHAT, SSE_DONE
from tests.router.fake_engine import FakeEngine
from tests.router.harness import run, running, settings_for, until

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "stream": True}


def test_drain_waits_for_a_stream_on_an_engine_discovery_removed() -> None:
    """A 2 s stream whose engine leaves discovery mid-stream (its pod is terminating) still
    finishes with [DONE] before the drain returns; a request on the open connection is served."""
    async def body() -> None:
        engine = FakeEngine(chunks=40, chunk_delay=0.05)
        await engine.start()
        async with running(settings_for([engine.url])) as (app, url), aiohttp.ClientSession() as s, \
                aiohttp.ClientSession() as kept:
            async with kept.get(url + "/health") as health:  # a kept-alive connection, opened before
                assert health.status == 200
            async with s.post(url + PATH_CHAT, json=CHAT) as resp:
                await resp.content.readuntil(b"\n\n")
                app.apply_engines([])  # the engine's pod got its deletionTimestamp
                assert not app.registry.states
                drain = asyncio.ensure_future(app.drain(timeout=30))
                await until(lambda: app.draining)
                async with kept.get(url + "/health") as health:
                    assert health.status == 503 and (await health.json())["status"] == "draining"
                assert not drain.done()
                data = await resp.read()
            assert await drain is True
            assert data.endswith(SSE_DONE) and engine.completed == 1 and app.open_requests == 0
        await engine.stop()
    run(body())


def test_drain_gives_up_after_its_timeout() -> None:
    """A stream longer than the drain period leaves the drain reporting it unfinished."""
    async def body() -> None:
        engine = FakeEngine(chunks=100, chunk_delay=0.05)
        await engine.start()
        async with running(settings_for([engine.url])) as (app, url), aiohttp.ClientSession() as s, \
                s.post(url + PATH_CHAT, json=CHAT) as resp:
            await resp.content.readuntil(b"\n\n")
            assert await app.drain(timeout=0.3) is False
            assert app.open_requests == 1
        await engine.stop()
    run(body())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("drain_s", "finished"), [(30, True), (0.5, False)])
def test_sigterm_keeps_a_long_stream_going_for_the_configured_drain(tmp_path: Path, drain_s: float,
                                                                    finished: bool) -> None:
    """`python -m router`, SIGTERM in the middle of a 4 s stream: with `drain_s: 30` the stream
    ends with [DONE]; with 0.5 s it is cut; either way the process then exits 0."""
    async def body() -> None:
        engine = FakeEngine(chunks=40, chunk_delay=0.1)
        await engine.start()
        port = _free_port()
        config = tmp_path / "router.json"
        config.write_text(json.dumps({"engines": [{"url": engine.url}], "models": ["m"], "host": "127.0.0.1",
                                      "port": port, "drain_s": drain_s, "policy": {"kind": "round_robin"},
                                      "log_level": "warning"}))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "router", "--config", str(config))
        url = f"http://127.0.0.1:{port}"
        try:
            async def ready() -> bool:
                try:
                    async with aiohttp.ClientSession() as s, s.get(url + "/health") as r:
                        return r.status == 200
                except aiohttp.ClientConnectionError:
                    return False
            await until(ready, timeout=20)
            async with aiohttp.ClientSession() as s, s.post(url + PATH_CHAT, json=CHAT) as resp:
                await resp.content.readuntil(b"\n\n")
                proc.send_signal(signal.SIGTERM)
                try:
                    data = await resp.read()
                except aiohttp.ClientPayloadError:
                    data = b""
            assert data.endswith(SSE_DONE) is finished
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await engine.stop()
    run(body(), timeout=45)
