"""How much load one emulator process carrying 8 engines sustains, and its cost at the seed's rate.

    .venv/bin/python benchmarks/emulator_capacity.py [--engines 8] [--seed-seconds 20] [--sat-seconds 10]

Starts `llm-stack emulate` as a child process (so its CPU time is its own), then drives it over
loopback with seed-like requests: a shared 1,000-token system prompt, a per-user 20,000-token
history, a new question, 100 streamed tokens (`ignore_eos`), users spread over the engines.

1. Seed rate: 4 requests/s at `time_scale` 1 (real A100 timings) for `--seed-seconds`: the
   emulator's CPU utilisation, its worst step lateness (`max_lag_s`: > 0 only when the
   process cannot keep its own clock), and server-side TTFT.
2. Saturation: `--concurrency` requests in flight at `time_scale` `--sat-scale` for
   `--sat-seconds`: finished requests per emulator CPU-second, i.e. requests/s per core.

Prints the figures; the load generator shares the machine, so figures are lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

from contracts import HEADER_REQUEST_ID, PATH_CHAT
from emulator.runner import EmulatorProcess

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SYSTEM = "You are a helpful assistant. " * 138  # ~1,000 tokens
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class Load:
    """Counts of one load phase."""

    done: int = 0
    errors: int = 0
    chunks: int = 0
    client_ttft: list[float] = field(default_factory=list)


def make_body(user: int, round_: int, history_tokens: int, answer_tokens: int) -> bytes:
    """A seed-like chat request: shared system prompt, the user's history, a new question."""
    history = (f"user {user} said something memorable. " * (history_tokens // 9 + 1))[: history_tokens * 4]
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": history},
                {"role": "user", "content": f"Question {round_} from user {user}?"}]
    return orjson.dumps({"model": MODEL, "messages": messages, "max_tokens": answer_tokens, "stream": True,
                         "ignore_eos": True, "stream_options": {"include_usage": True}})


async def one_request(session: aiohttp.ClientSession, url: str, body: bytes, rid: str, load: Load) -> None:
    """Send one streamed request and read it to the end."""
    start = time.perf_counter()
    try:
        async with session.post(url + PATH_CHAT, data=body, headers={
                "Content-Type": "application/json", HEADER_REQUEST_ID: rid}) as resp:
            first = True
            async for _line in resp.content:
                if first:
                    load.client_ttft.append(time.perf_counter() - start)
                    first = False
                load.chunks += 1
        load.done += resp.status == 200
        load.errors += resp.status != 200
    except aiohttp.ClientError:
        load.errors += 1


async def paced(urls: list[str], qps: float, seconds: float, users: int, history: int) -> Load:
    """Open-loop arrivals at `qps` for `seconds`, round-robin over users; waits for all to finish."""
    load, tasks = Load(), []
    bodies = {u: make_body(u, 0, history, 100) for u in range(users)}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter()
        for i in range(int(qps * seconds)):
            await asyncio.sleep(max(0.0, start + i / qps - time.perf_counter()))
            user = i % users
            tasks.append(asyncio.create_task(one_request(session, urls[user % len(urls)], bodies[user],
                                                         f"seed-{i}", load)))
        await asyncio.gather(*tasks)
    return load


async def saturate(urls: list[str], concurrency: int, seconds: float, users: int, history: int) -> Load:
    """Closed loop: `concurrency` workers send requests back to back for `seconds`."""
    load = Load()
    bodies = {u: make_body(u, 0, history, 100) for u in range(users)}
    deadline = time.perf_counter() + seconds

    async def worker(w: int, session: aiohttp.ClientSession) -> None:
        n = 0
        while time.perf_counter() < deadline:
            user = (w + n * concurrency) % users
            await one_request(session, urls[user % len(urls)], bodies[user], f"sat-{w}-{n}", load)
            n += 1
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(worker(w, session) for w in range(concurrency)))
    return load


async def engine_stats(urls: list[str]) -> list[dict]:
    """`/emulator/stats` of every engine."""
    async with aiohttp.ClientSession() as session:
        out = []
        for url in urls:
            async with session.get(url + "/emulator/stats") as resp:
                out.append(await resp.json())
        return out


async def server_ttfts(urls: list[str]) -> list[float]:
    """Server-side TTFT of every journaled request."""
    async with aiohttp.ClientSession() as session:
        values: list[float] = []
        for url in urls:
            async with session.get(url + "/emulator/requests", params={"limit": "100000"}) as resp:
                values += [r["ttft_s"] for r in (await resp.json())["requests"] if r["ttft_s"] is not None]
        return values


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 2 else float("nan")


def phase(name: str, args: argparse.Namespace, scale: float, run) -> None:
    """Run one load phase against a fresh emulator process and print its figures."""
    flags = ["--time-scale", str(scale), "--gpu-cache-tokens", "400000", "--cpu-cache-tokens", "920000"]
    with EmulatorProcess(engines=args.engines, args=flags) as proc:
        assert proc.pid is not None
        cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
        load = asyncio.run(run(proc.urls))
        cpu, wall = cpu_seconds(proc.pid) - cpu0, time.perf_counter() - wall0
        stats = asyncio.run(engine_stats(proc.urls))
        ttfts = asyncio.run(server_ttfts(proc.urls))
    lag = max(s["max_lag_s"] for s in stats)
    late = sum(s["late_steps"] for s in stats) / max(1, sum(s["steps"] for s in stats))
    hits = sum(s["gpu_hit_tokens"] + s["cpu_hit_tokens"] for s in stats) / max(1, sum(s["queried_tokens"]
                                                                                     for s in stats))
    print(f"== {name}: {args.engines} engines, time_scale {scale}")
    print(f"  finished {load.done} requests ({load.errors} errors), {load.chunks} SSE lines, in {wall:.1f} s"
          f" = {load.done / wall:.1f} req/s, {load.chunks / wall:.0f} lines/s")
    print(f"  emulator CPU {cpu:.2f} s = {100 * cpu / wall:.1f} % of one core;"
          f" {load.done / max(cpu, 1e-9):.0f} requests per CPU-second (= req/s per core)")
    print(f"  steps ending > 2 ms late: {100 * late:.2f} %, worst {1000 * lag:.1f} ms;"
          f" cache hit (GPU+CPU) {100 * hits:.1f} %")
    print(f"  server TTFT p50 {_pct(ttfts, 50):.3f} s p99 {_pct(ttfts, 99):.3f} s;"
          f" client TTFT p50 {_pct(load.client_ttft, 50):.3f} s p99 {_pct(load.client_ttft, 99):.3f} s")


def main() -> None:
    """Parse flags and run both phases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=8)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--history-tokens", type=int, default=20_000)
    parser.add_argument("--seed-qps", type=float, default=4.0)
    parser.add_argument("--seed-seconds", type=float, default=20.0)
    parser.add_argument("--sat-scale", type=float, default=0.02)
    parser.add_argument("--sat-seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    phase(f"seed rate {args.seed_qps} QPS", args, 1.0,
          lambda urls: paced(urls, args.seed_qps, args.seed_seconds, args.users, args.history_tokens))
    phase(f"saturation, {args.concurrency} in flight", args, args.sat_scale,
          lambda urls: saturate(urls, args.concurrency, args.sat_seconds, args.users, args.history_tokens))


if __name__ == "__main__":
    main()
