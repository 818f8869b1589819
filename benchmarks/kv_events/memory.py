"""Router memory after N distinct prompts, measured in-process on the pure structures, in a
process of its own (`python -m benchmarks.kv_events.memory --prompts N --mode MODE`, one JSON
line out): what the HTTP shell adds is a constant the benchmark measures on a live router apart.

Every prompt is a 1,000-token system prompt every user shares and 64 tokens of its own, routed by
the `prefix` policy over `--engines` engines of DESIGN.md's 400k-token GPU cache. In `events`
mode each chosen engine also publishes what it stored, as vLLM would: the system prompt's blocks
once, then the prompt's own four 16-token blocks (parent: the system prompt's last block), and
`BlockRemoved` for its least recently stored own blocks once its cache is full (vLLM reports
its evictions; the shared prefix stays hot); the events go into a `ResidencyIndex`. RSS is read
from /proc after a garbage collection, before (`baseline_mb`: the interpreter and imports) and
after (`rss_mb`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections import deque
from collections.abc import Sequence

from contracts.kv_events import KV_BLOCK_SIZE
from local.procs import rss_bytes
from router.routing.base import EngineState, RouteRequest
from router.routing.kv.events import BlockRemoved, BlockStored, Tier
from router.routing.kv.residency import ResidencyIndex
from router.routing.policies.prefix import PrefixPolicy
from router.routing.prompt import BYTES_PER_TOKEN

SYSTEM_TOKENS = 1000
OWN_TOKENS = 64
GPU_TOKENS = 400_000
MODEL = "m"


class _Engine:
    """One emulated engine's event side: its own blocks oldest first, evicted past capacity."""

    def __init__(self, url: str, index: ResidencyIndex, system: tuple[int, ...]) -> None:
        self.url = url
        self.index = index
        self.own: deque[int] = deque()
        self.room = (GPU_TOKENS - SYSTEM_TOKENS) // KV_BLOCK_SIZE
        blocks = len(system) // KV_BLOCK_SIZE
        self.system_tail = -blocks
        hashes = tuple(-(i + 1) for i in range(blocks))  # the shared prefix's engine hashes
        index.add_engine(url, {Tier.GPU: GPU_TOKENS})
        index.apply(url, [BlockStored(block_hashes=hashes, parent_block_hash=None,
                                      token_ids=system[:blocks * KV_BLOCK_SIZE], block_size=KV_BLOCK_SIZE,
                                      tier=Tier.GPU)])

    def store(self, n: int) -> None:
        per = OWN_TOKENS // KV_BLOCK_SIZE
        hashes = tuple(n * per + i + 1 for i in range(per))
        tokens = tuple(1_000_000 + n * OWN_TOKENS + i for i in range(OWN_TOKENS))
        events: list = [BlockStored(block_hashes=hashes, parent_block_hash=self.system_tail, token_ids=tokens,
                                    block_size=KV_BLOCK_SIZE, tier=Tier.GPU)]
        self.own.extend(hashes)
        evicted = [self.own.popleft() for _ in range(max(0, len(self.own) - self.room))]
        if evicted:
            events.append(BlockRemoved(block_hashes=tuple(evicted), tier=Tier.GPU))
        self.index.apply(self.url, events)


def _text(n: int) -> bytes:
    """Prompt n's own 64 tokens (distinct for every n)."""
    return (f"{n:012d}" * (OWN_TOKENS * BYTES_PER_TOKEN // 12 + 1))[:OWN_TOKENS * BYTES_PER_TOKEN].encode()


def measure(prompts: int, engines: int, mode: str) -> dict[str, float]:
    gc.collect()
    baseline = rss_bytes(os.getpid())
    started = time.process_time()
    system = b"sys " * SYSTEM_TOKENS
    states = [EngineState(id=f"http://10.0.0.{i + 1}:8000", gpu_cache_tokens=GPU_TOKENS)
              for i in range(engines)]
    policy = PrefixPolicy()
    index = ResidencyIndex()
    fed = {}
    if mode == "events":
        ids = tuple(range(1, SYSTEM_TOKENS + 1))
        fed = {s.id: _Engine(s.id, index, ids) for s in states}
    for n in range(prompts):
        decision = policy.select(RouteRequest(model=MODEL, prompt=system + _text(n)), states)
        if fed:
            fed[decision.engine.id].store(n)
    gc.collect()
    rss = rss_bytes(os.getpid())
    cpu = time.process_time() - started
    return {"prompts": prompts, "engines": engines, "baseline_mb": baseline / 2**20, "rss_mb": rss / 2**20,
            "cpu_us_per_prompt": cpu / max(prompts, 1) * 1e6,
            "index_keys": float(sum(index.size(s.id, Tier.GPU) for s in states)) if fed else 0.0}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.kv_events.memory",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=1_000_000)
    p.add_argument("--engines", type=int, default=8)
    p.add_argument("--mode", choices=("approximate", "events"), default="events")
    args = p.parse_args(argv)
    if args.prompts < 1 or args.engines < 1:
        p.error(f"--prompts and --engines must be >= 1 (got {args.prompts}, {args.engines})")
    print(json.dumps(measure(args.prompts, args.engines, args.mode)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
