"""`workers: 2`: two processes share the port (SO_REUSEPORT), both serve, place a conversation
alike, and either one's /metrics shows every worker's series."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

import aiohttp

import contracts as c
from tests.router.fake_engine import FakeEngine
from tests.router.harness import json_session, run, until
from tests.router.shell.test_router_metrics import samples


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_workers_start_share_the_port_and_both_serve(tmp_path: Path) -> None:
    """Fresh connections reach two distinct worker pids, and each proxies requests."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        port = _free_port()
        config = tmp_path / "router.json"
        config.write_text(json.dumps({"engines": [{"url": engine.url}], "models": ["m"], "host": "127.0.0.1",
                                      "port": port, "workers": 2, "policy": {"kind": "round_robin"},
                                      "log_level": "warning"}))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "router", "--config", str(config))
        pids: set[int] = set()
        url = f"http://127.0.0.1:{port}"
        try:
            async def probe() -> bool:
                conn = aiohttp.TCPConnector(force_close=True)
                async with json_session(connector=conn) as s:
                    try:
                        async with s.get(url + "/health") as r:
                            pids.add((await r.json())["pid"])
                        async with s.post(url + "/v1/completions", json={"model": "m", "prompt": "x"}) as r:
                            assert r.status == 200
                    except aiohttp.ClientConnectionError:
                        return False
                return len(pids) >= 2
            await until(probe, timeout=25)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            await engine.stop()
        assert len(pids) == 2 and proc.pid not in pids and engine.requests >= 2
    run(body(), timeout=45)


def test_two_workers_share_metrics_and_place_a_conversation_on_one_engine(tmp_path: Path) -> None:
    """`prefix` over two engines with two workers: every round of one conversation, each on a
    fresh connection (so the kernel spreads them over the workers), lands on one engine, and
    /metrics from any worker counts every request either worker answered."""
    async def body() -> None:
        engines = [FakeEngine(name="a"), FakeEngine(name="b")]
        for engine in engines:
            await engine.start()
        port = _free_port()
        config = tmp_path / "router.json"
        config.write_text(json.dumps({"engines": [{"url": e.url} for e in engines], "models": ["m"],
                                      "host": "127.0.0.1", "port": port, "workers": 2,
                                      "policy": {"kind": "prefix"}, "log_level": "warning"}))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "router", "--config", str(config))
        url = f"http://127.0.0.1:{port}"
        pids: set[int] = set()
        try:
            async def both_up() -> bool:
                async with json_session(connector=aiohttp.TCPConnector(force_close=True)) as s:
                    try:
                        async with s.get(url + "/health") as r:
                            pids.add((await r.json())["pid"])
                    except aiohttp.ClientConnectionError:
                        return False
                return len(pids) >= 2
            await until(both_up, timeout=25)
            prompt, served = "system: be brief. " * 800, []
            async with json_session(connector=aiohttp.TCPConnector(force_close=True)) as s:
                for turn in range(12):
                    prompt += f" user turn {turn}: tell me more."
                    async with s.post(url + "/v1/completions", json={"model": "m", "prompt": prompt}) as r:
                        served.append((await r.json())["engine"])
                totals = []
                for _ in range(4):
                    async with s.get(url + "/metrics") as r:
                        found = samples(await r.text())
                    totals.append(sum(found[c.ROUTER_REQUESTS].values()))
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            for engine in engines:
                await engine.stop()
        assert len(set(served)) == 1, served
        assert totals == [12] * 4
    run(body(), timeout=60)


def test_two_workers_with_no_engine_hold_requests_and_the_held_gauge_sums_them(tmp_path: Path) -> None:
    """Zero engines, two workers: requests on fresh connections are held in both processes
    (no shared state), /metrics from either shows the sum, and all are answered once an
    engine appears in the targets file."""
    async def body() -> None:
        targets = tmp_path / "engines.json"
        targets.write_text("[]")
        port = _free_port()
        config = tmp_path / "router.json"
        config.write_text(json.dumps({"file_discovery": {"path": str(targets), "interval_s": 0.05},
                                      "models": ["m"], "host": "127.0.0.1", "port": port, "workers": 2,
                                      "policy": {"kind": "round_robin"}, "log_level": "warning"}))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "router", "--config", str(config))
        url, engine = f"http://127.0.0.1:{port}", FakeEngine()
        held_by: dict[int, int] = {}
        fresh = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))

        async def health() -> bool:
            try:
                async with fresh.get(url + "/health") as r:
                    doc = await r.json()
            except aiohttp.ClientConnectionError:
                return False
            held_by[doc["pid"]] = doc["held_requests"]
            return r.status == 200

        async def held_total() -> float:
            async with fresh.get(url + "/metrics") as r:
                return samples(await r.text()).get(c.ROUTER_HELD, {}).get((("model", "m"),), 0.0)

        async def held_total_is(n: int) -> bool:
            return await held_total() == n

        async def spread() -> bool:
            await health()
            return sum(1 for n in held_by.values() if n) >= 2 and sum(held_by.values()) == 8

        async def both_up() -> bool:
            return await health() and len(held_by) >= 2

        try:
            await until(both_up, timeout=25)
            body = {"model": "m", "prompt": "x"}
            posts = [asyncio.ensure_future(fresh.post(url + "/v1/completions", json=body)) for _ in range(8)]
            await until(lambda: held_total_is(8), timeout=10)
            await until(spread, timeout=10)
            await engine.start()
            targets.write_text(json.dumps([{"targets": [engine.url.removeprefix("http://")]}]))
            statuses = []
            for post in posts:
                async with await post as r:
                    statuses.append(r.status)
            assert statuses == [200] * 8 and engine.requests == 8
            assert await held_total() == 0.0
        finally:
            await fresh.close()
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            await engine.stop()
    run(body(), timeout=60)
