"""Speed and memory of the routing core: the `prefix` policy over its `PrefixIndex`.

    .venv/bin/python benchmarks/prefix_index_bench.py [--selects N] [--memory-prompts N]

Prints, for 8 KB prompts (2,048 tokens) at 4 and 8 engines:
- µs to hash a prompt into the policy's index blocks (`router.routing.prompt.block_hashes`; 64-token
  blocks by default, `--block-tokens 16` for vLLM's own block size), part of every select;
- µs per `select` (hashing + index lookup + decision + insert) for three workloads:
  `returning` (1,000 users with a shared 1k-token system prompt, sent again and again: cache
  hits), `new` (every prompt distinct; the index is full, so each insert evicts a whole
  prompt's blocks: the worst case), `mixed` (half each);
- first, in a fresh process, its resident memory after `--memory-prompts` distinct 8 KB prompts
  through 8 engines with the seed's capacity (400k GPU + 920k LMCache CPU tokens each), i.e.
  with every engine's index full.
Each speed figure is the best of `--repeats` fresh runs (the machine is shared and noisy).
Bounded: fixed counts, no sleeps; the default run takes about a minute on one core.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time
from collections.abc import Callable

from router.routing.base import EngineState, RouteRequest
from router.routing.policies.prefix import PrefixConfig, PrefixPolicy

PROMPT_BYTES = 8192
SYSTEM = (b"You are a helpful assistant. Answer briefly and cite sources. " * 70)[:4000]
SEED_GPU_TOKENS, SEED_CPU_TOKENS = 400_000, 920_000


def engines(count: int, gpu: int = SEED_GPU_TOKENS, cpu: int = SEED_CPU_TOKENS) -> list[EngineState]:
    return [EngineState(id=f"http://10.0.0.{i}:8000", gpu_cache_tokens=gpu, cpu_cache_tokens=cpu)
            for i in range(count)]


def distinct_prompt(i: int) -> bytes:
    """An 8 KB prompt no other `i` shares a block with (cheap: a repeated 8-byte counter)."""
    return i.to_bytes(8, "little") * (PROMPT_BYTES // 8)


def user_prompt(user: int) -> bytes:
    """The shared system prompt then this user's own text, 8 KB in all."""
    own = user.to_bytes(4, "little") * ((PROMPT_BYTES - len(SYSTEM)) // 4 + 1)
    return (SYSTEM + own)[:PROMPT_BYTES]


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def per_call_us(fn: Callable[[int], object], count: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return (time.perf_counter() - start) / count * 1e6


def fill(policy: PrefixPolicy, pool: list[EngineState], prompts: int, offset: int) -> None:
    for i in range(prompts):
        policy.select(RouteRequest(model="m", prompt=distinct_prompt(offset + i)), pool)


def bench_select(n_engines: int, selects: int, config: PrefixConfig) -> dict[str, float]:
    """µs per select for each workload, on a policy whose index is already full."""
    pool = engines(n_engines, gpu=100_000, cpu=0)  # small capacity: full quickly, evicting
    policy = PrefixPolicy(config)
    fill(policy, pool, 100_000 * n_engines // (PROMPT_BYTES // 4) + 50, offset=1 << 40)
    users = [user_prompt(u) for u in range(1000)]
    rng = random.Random(7)
    order = [rng.randrange(1000) for _ in range(selects)]
    returning = [RouteRequest(model="m", prompt=users[u], session_key=None) for u in order]
    fresh = [RouteRequest(model="m", prompt=distinct_prompt(i)) for i in range(selects)]
    mixed = [returning[i] if i % 2 else RouteRequest(model="m", prompt=distinct_prompt(selects + i))
             for i in range(selects)]
    for request in returning[:2000]:
        policy.select(request, pool)  # warm: each user's conversation placed once
    return {
        "hash": per_call_us(lambda i: policy.hashes(users[order[i]]), selects),
        "returning": per_call_us(lambda i: policy.select(returning[i], pool), selects),
        "new": per_call_us(lambda i: policy.select(fresh[i], pool), selects),
        "mixed": per_call_us(lambda i: policy.select(mixed[i], pool), selects),
    }


def bench_memory(prompts: int, config: PrefixConfig) -> tuple[float, float, int, float]:
    """(RSS before MB, RSS after MB, distinct blocks held, seconds) for `prompts` distinct prompts."""
    gc.collect()
    before = rss_mb()
    policy, pool = PrefixPolicy(config), engines(8)
    start = time.perf_counter()
    fill(policy, pool, prompts, offset=0)
    seconds = time.perf_counter() - start
    gc.collect()
    return before, rss_mb(), policy.index.distinct_blocks(), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selects", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="fresh runs per figure; the best is kept")
    parser.add_argument("--memory-prompts", type=int, default=1_000_000)
    parser.add_argument("--block-tokens", type=int, default=PrefixConfig.block_tokens)
    args = parser.parse_args()
    config = PrefixConfig(block_tokens=args.block_tokens)
    print(f"pid {os.getpid()}; index blocks of {config.block_tokens} tokens: "
          f"an 8 KB prompt is {PROMPT_BYTES // config.block_bytes} blocks")
    if args.memory_prompts:
        before, after, blocks, seconds = bench_memory(args.memory_prompts, config)
        print(f"memory: {args.memory_prompts:,} distinct 8 KB prompts over 8 engines "
              f"(seed capacity, {blocks:,} distinct blocks held) in {seconds:.0f} s: "
              f"RSS {before:.0f} MB before -> {after:.0f} MB after")
    for n_engines in (4, 8):
        runs = [bench_select(n_engines, args.selects, config) for _ in range(args.repeats)]
        figures = {name: min(run[name] for run in runs) for name in runs[0]}
        print(f"{n_engines} engines: hashing {figures['hash']:.1f} µs; select (incl. hashing): "
              f"returning {figures['returning']:.1f} µs, new {figures['new']:.1f} µs, "
              f"mixed {figures['mixed']:.1f} µs")


if __name__ == "__main__":
    main()
