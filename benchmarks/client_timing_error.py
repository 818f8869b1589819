"""How much does the benchmark client's own overhead skew the TTFT it reports?

Runs the seed's full shape (320 users, 1k shared system prompt, 20k-token histories,
100-token answers, 4 QPS) for a bounded window against one emulated engine in a separate
process on loopback (time-scaled so that it is never the bottleneck), then matches every
request with the engine's own journal (`GET /emulator/requests`, keyed by the
`x-request-id` the client sent) and prints the per-request difference client TTFT - engine
TTFT (and the same for end-to-end latency), with the client process's CPU use.

The engine stamps arrival after it has read and parsed the body and the first token when its
scheduler emits it, so the difference is an upper bound on the client's error: it also holds
the body upload, the engine's parsing and the write back over loopback.

    .venv/bin/python benchmarks/client_timing_error.py --duration 90
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

import aiohttp

from bench.config import BenchConfig
from bench.runner import BenchResult, run_benchmark
from bench.stats import Dist, distribution
from emulator.runner import EmulatorProcess


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--history-tokens", type=int, default=20_000)
    parser.add_argument("--system-prompt-tokens", type=int, default=1_000)
    parser.add_argument("--answer-tokens", type=int, default=100)
    parser.add_argument("--qps", type=float, default=4.0)
    parser.add_argument("--duration", type=float, default=90.0, help="launch window, s")
    parser.add_argument("--time-scale", type=float, default=0.02,
                        help="the engine's time scale (0.02: 50x faster than an A100, so one engine "
                             "carries the seed's load, cold 20k-token prompts included)")
    parser.add_argument("--gpu-cache-tokens", type=int, default=400_000)
    parser.add_argument("--cpu-cache-tokens", type=int, default=920_000)
    return parser.parse_args()


async def _journal(urls: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.get(url + "/emulator/requests", params={"limit": "100000"}) as resp:
                for record in (await resp.json())["requests"]:
                    out[record["request_id"]] = record
    return out


def _ms(dist: Dist | None) -> str:
    if dist is None:
        return "n/a"
    return (f"median {dist.p50 * 1e3:.2f} ms, p90 {dist.p90 * 1e3:.2f} ms, p99 {dist.p99 * 1e3:.2f} ms, "
            f"max {dist.max * 1e3:.2f} ms (n={dist.count})")


async def _bench(config: BenchConfig) -> tuple[BenchResult, float, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = await run_benchmark(config)
    return result, time.process_time() - cpu0, time.perf_counter() - wall0


def _report(result: BenchResult, journal: dict[str, dict], cpu_s: float, wall_s: float) -> None:
    records = [r for p in result.points for r in p.records if r.ok]
    matched = [(r, journal[r.request_id]) for r in records if r.request_id in journal]
    ttft_err = distribution(r.ttft_s - j["ttft_s"] for r, j in matched if j.get("ttft_s") is not None)
    e2e_err = distribution(r.e2e_s - j["e2e_s"] for r, j in matched if j.get("e2e_s") is not None)
    stats = result.points[0].stats
    if result.warmup is not None:
        print(f"warm-up (not measured): {result.warmup.requests} requests, {result.warmup.errors} errors, "
              f"{result.warmup.elapsed_s:.1f} s")
    print(f"requests: {stats.launched} launched, {stats.finished} finished, {stats.errors} errors, "
          f"{len(matched)} matched in the engines' journals")
    ttft = stats.ttft
    ttft_text = ("n/a" if ttft is None
                 else f"{ttft.mean * 1e3:.1f} / {ttft.p50 * 1e3:.1f} / {ttft.p99 * 1e3:.1f} ms")
    print(f"client TTFT (mean / p50 / p99): {ttft_text}; input {stats.input_tps:.0f} tok/s, "
          f"output {stats.output_tps:.0f} tok/s")
    print(f"TTFT error (client - engine): {_ms(ttft_err)}")
    print(f"E2E error (client - engine):  {_ms(e2e_err)}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"client CPU: {cpu_s:.1f} s over {wall_s:.1f} s wall = {cpu_s / wall_s:.1%} of one core; "
          f"max RSS {rss_mb:.0f} MB")


def main() -> None:
    args = _args()
    flags = ["--time-scale", str(args.time_scale), "--gpu-cache-tokens", str(args.gpu_cache_tokens),
             "--cpu-cache-tokens", str(args.cpu_cache_tokens)]
    # One engine, straight from the client (no router): the difference is the client's own.
    with EmulatorProcess(engines=1, args=flags) as emulator:
        config = BenchConfig(
            base_url=emulator.urls[0], users=args.users, rounds=args.rounds,
            system_prompt_tokens=args.system_prompt_tokens, history_tokens=args.history_tokens,
            answer_tokens=args.answer_tokens, qps=(args.qps,), duration_s=args.duration, drain_s=60.0,
        )
        result, cpu_s, wall_s = asyncio.run(_bench(config))
        journal = asyncio.run(_journal(emulator.urls))
    _report(result, journal, cpu_s, wall_s)


if __name__ == "__main__":
    main()
