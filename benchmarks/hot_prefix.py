"""`python -m benchmarks.hot_prefix`: a hot shared prefix with a few heavy users.

Every user's conversation starts with one long system prompt; a few users send `heavy_factor`
times more often than the rest. On fresh emulated engines (`llm-stack emulate`) each of
`prefix` and `session` (through the router) and a perfectly balanced per-user assignment
(the client sends each user straight to an engine chosen by longest-processing-time packing
of the users' rates, the best any per-user placement can do) runs the same seeded load; the
script reports warm-request TTFT (every round after a user's first) p50/p99 and the
per-engine request spread (max/mean, counted by the engines' own e2e histograms).

Each user is a closed loop: it waits an exponential think time of mean 1/rate, sends its
next round (system prompt + its history + a question), reads the streamed answer, appends it.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.client import ChatClient, new_session
from bench.workload import filler
from contracts import PATH_METRICS, VLLM_E2E
from contracts.promtext import sum_samples
from local.procs import BenchError, free_ports, processes, wait_http

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
TARGETS = ("prefix", "session", "balanced")


@dataclass(frozen=True, kw_only=True)
class HotPrefixPlan:
    engines: int = 4
    users: int = 16
    heavy_users: int = 3
    heavy_factor: float = 5.0
    system_prompt_tokens: int = 6000
    first_user_tokens: int = 200
    question_tokens: int = 32
    answer_tokens: int = 16
    light_rate: float = 0.12  # requests per second per light user
    duration_s: float = 40.0
    time_scale: float = 0.5
    gpu_cache_tokens: int = 60_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.heavy_users < self.users or self.engines < 2:
            raise BenchError(f"hot-prefix plan needs 0 < heavy_users < users and >= 2 engines "
                             f"(got {self.heavy_users}, {self.users}, {self.engines})")

    def rate(self, user: int) -> float:
        return self.light_rate * (self.heavy_factor if user < self.heavy_users else 1.0)


def balanced_assignment(rates: Sequence[float], engines: int) -> list[int]:
    """Each user's engine: heaviest users first, each onto the engine with the least rate so far
    (LPT packing), so per-engine request rates are as even as a per-user assignment allows."""
    load = [(0.0, e) for e in range(engines)]
    out = [0] * len(rates)
    for user in sorted(range(len(rates)), key=lambda u: (-rates[u], u)):
        total, engine = heapq.heappop(load)
        out[user] = engine
        heapq.heappush(load, (total + rates[user], engine))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _user(plan: HotPrefixPlan, user: int, client: ChatClient, system: str, deadline: float,
                ttfts: list[tuple[int, int, float]]) -> None:
    rng = random.Random(plan.seed * 1000 + user)
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": filler(rng, plan.first_user_tokens)}]
    for turn in range(10_000):
        think = rng.expovariate(plan.rate(user))
        if time.monotonic() + think > deadline:  # the next round would start too late: done now
            return
        await asyncio.sleep(think)
        result = await client.stream_chat(messages, max_tokens=plan.answer_tokens, user_id=f"user-{user}",
                                          request_id=f"u{user}-r{turn}")
        if result.error or not result.token_times:
            raise BenchError(f"user {user} round {turn}: {result.error or 'no tokens'}")
        ttfts.append((user, turn, result.token_times[0] - result.launch))
        messages += [{"role": "assistant", "content": result.text},
                     {"role": "user", "content": filler(rng, plan.question_tokens)}]


async def drive(plan: HotPrefixPlan, url_for: Callable[[int], str]) -> list[tuple[int, int, float]]:
    """Every user's closed loop for `duration_s`; returns (user, round, TTFT s) per request."""
    system = filler(random.Random(plan.seed), plan.system_prompt_tokens)
    ttfts: list[tuple[int, int, float]] = []
    deadline = time.monotonic() + plan.duration_s
    async with new_session(120.0) as session:
        clients = {url: ChatClient(session, url, MODEL) for url in {url_for(u) for u in range(plan.users)}}
        await asyncio.gather(*(_user(plan, u, clients[url_for(u)], system, deadline, ttfts)
                               for u in range(plan.users)))
    return ttfts


async def _engine_counts(urls: Sequence[str]) -> list[int]:
    async with new_session(10.0) as session:
        counts = []
        for url in urls:
            async with session.get(url + PATH_METRICS) as resp:
                text = (await resp.read()).decode()
            counts.append(int(sum_samples(text, {VLLM_E2E + "_count"}).get(VLLM_E2E + "_count", 0)))
    return counts


async def _served(urls: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Request id -> (engine index, prompt tokens it did not have cached), from the engines'
    journals (`GET /emulator/requests`)."""
    out = {}
    async with new_session(10.0) as session:
        for index, url in enumerate(urls):
            async with session.get(url + "/emulator/requests?limit=100000") as resp:
                records = orjson.loads(await resp.read())["requests"]
            for r in records:
                out[r["request_id"]] = (index, r["prompt_tokens"] - r["gpu_hit_tokens"] - r["cpu_hit_tokens"])
    return out


def summarize(target: str, ttfts: Sequence[tuple[int, int, float]], counts: Sequence[int],
              served: dict[str, tuple[int, int]]) -> dict[str, object]:
    """The target's figures; `moved`: warm requests served by another engine than the user's
    previous round (each recomputes what the new engine lacks)."""
    requests, moved = [], 0
    last_engine: dict[int, int] = {}
    for user, turn, ttft in sorted(ttfts, key=lambda t: (t[0], t[1])):
        engine, uncached = served.get(f"u{user}-r{turn}", (-1, -1))
        moved += turn > 0 and last_engine.get(user, engine) != engine
        last_engine[user] = engine
        requests.append({"user": user, "turn": turn, "ttft_ms": round(1000 * ttft, 2), "engine": engine,
                         "uncached_tokens": uncached})
    warm = [t for _, turn, t in ttfts if turn > 0]
    mean = sum(counts) / len(counts)
    return {"target": target, "requests": len(ttfts), "warm": len(warm), "moved": moved,
            "warm_ttft_p50_ms": 1000 * percentile(warm, 0.5),
            "warm_ttft_p99_ms": 1000 * percentile(warm, 0.99), "per_engine": list(counts),
            "spread_max_over_mean": max(counts) / mean if mean else float("nan"), "per_request": requests}


def _router_argv(plan: HotPrefixPlan, policy: str, urls: Sequence[str], port: int,
                 log_dir: Path) -> list[str]:
    """The router's container entrypoint (`python -m router`) on this checkout's code."""
    config = log_dir / f"router-{policy}.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_bytes(orjson.dumps({
        "engines": [{"url": url, "model": MODEL, "gpu_cache_tokens": plan.gpu_cache_tokens} for url in urls],
        "models": [MODEL], "host": "127.0.0.1", "port": port, "policy": {"kind": policy},
        "log_level": "warning"}))
    return [sys.executable, "-m", "router", "--config", str(config)]


def run_target(plan: HotPrefixPlan, target: str, log_dir: Path) -> dict[str, object]:
    """One target on fresh engines; its warm TTFT figures and per-engine spread."""
    from emulator.runner import EmulatorProcess

    flags = ["--model", MODEL, "--gpu-cache-tokens", str(plan.gpu_cache_tokens), "--cpu-cache-tokens", "0",
             "--time-scale", str(plan.time_scale)]
    with EmulatorProcess(engines=plan.engines, args=flags) as emu, processes(log_dir) as procs:
        urls = list(emu.urls)
        if target == "balanced":
            assign = balanced_assignment([plan.rate(u) for u in range(plan.users)], plan.engines)
            ttfts = asyncio.run(drive(plan, lambda u: urls[assign[u]]))
        else:
            port = free_ports(1)[0]
            router = procs.start(f"router-{target}", _router_argv(plan, target, urls, port, log_dir))
            wait_http(f"http://127.0.0.1:{port}/health", 60.0, router)
            ttfts = asyncio.run(drive(plan, lambda u: f"http://127.0.0.1:{port}"))
        counts = asyncio.run(_engine_counts(urls))
        served = asyncio.run(_served(urls))
    return summarize(target, ttfts, counts, served)


def table(rows: Sequence[dict[str, object]]) -> str:
    lines = ["| seed | target | requests (warm, moved) | warm TTFT p50 (ms) | warm TTFT p99 (ms) "
             "| requests per engine | max/mean |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['target']} | {r['requests']} ({r['warm']}, {r['moved']}) | "
                     f"{r['warm_ttft_p50_ms']:.0f} | {r['warm_ttft_p99_ms']:.0f} | {r['per_engine']} | "
                     f"{r['spread_max_over_mean']:.2f} |")
    return "\n".join(lines)


def _verdict(value: float, bound: float = 1.3) -> str:
    return "met" if value <= bound else "missed"


def verdicts(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Per seed: `prefix` warm p99 against 1.3x the balanced assignment's, and its spread against 1.3."""
    out = []
    by = {(r["seed"], r["target"]): r for r in rows}
    for seed in sorted({r["seed"] for r in rows}):
        prefix, balanced = by.get((seed, "prefix")), by.get((seed, "balanced"))
        if prefix is None or balanced is None:
            continue
        ratio = prefix["warm_ttft_p99_ms"] / balanced["warm_ttft_p99_ms"]
        spread = prefix["spread_max_over_mean"]
        out.append(f"seed {seed}: prefix warm p99 / balanced = {ratio:.2f} ({_verdict(ratio)}); "
                   f"prefix spread max/mean {spread:.2f} ({_verdict(spread)})")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hot_prefix", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=HotPrefixPlan.duration_s)
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--seeds", default="0", help="comma-separated workload seeds, each run on every target")
    p.add_argument("--out", type=Path, default=Path("out/hot_prefix/results.json"))
    args = p.parse_args(argv)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        plan = HotPrefixPlan(duration_s=args.duration, seed=seed)
        for target in args.targets.split(","):
            rows.append({"seed": seed, **run_target(plan, target, args.out.parent / "logs")})
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"duration_s": args.duration, "rows": rows}
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(table(rows))
    print("\n".join(verdicts(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
