"""Router memory after N distinct prompts, measured in-process on the pure structures, in a
process of its own (`python -m benchmarks.kv_events.memory --prompts N --mode MODE`, one JSON
line out): what the HTTP shell adds is a constant the benchmark measures on a live router apart.

Every prompt is a 1,024-token system prompt every user shares and 64 tokens of its own, routed by
the `prefix` policy over `--engines` engines of DESIGN.md's 400k-token GPU cache. In `events`
mode each chosen engine also publishes what it stored, as vLLM would: the system prompt's blocks
once, then the prompt's own four 16-token blocks (parent: the system prompt's last block), and
`BlockRemoved` for its least recently stored own blocks once its cache is full (vLLM reports
its evictions; the shared prefix stays hot), one batch per prompt, through each engine's
`EngineFeed` (synced from an empty replay, then live) into the `ResidencyIndex`; where the
router scores by events (`RouteRequest.kv`, issue 19's scoring), every request also carries its
token ids and the feeds' view, so the policy's own event-mode structures are measured too
(`scored_by_events` in the output). RSS is read from /proc after a garbage collection, before
(`baseline_mb`: the interpreter and imports) and after (`rss_mb`).
"""

from __future__ import annotations

import argparse
import dataclasses
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
from router.routing.kv.events import BlockRemoved, BlockStored, KvEventBatch, Tier
from router.routing.kv.feed import EngineFeed, KvView
from router.routing.kv.residency import ResidencyIndex
from router.routing.policies.prefix import PrefixPolicy
from router.routing.prompt import BYTES_PER_TOKEN

SYSTEM_TOKENS = 1024  # whole 16-token blocks: the prompt's own part starts a block
OWN_TOKENS = 64
GPU_TOKENS = 400_000
MODEL = "m"


class _Engine:
    """One emulated engine's event side: its own blocks oldest first, evicted past capacity,
    each step's events one batch into its feed."""

    def __init__(self, url: str, index: ResidencyIndex, system: tuple[int, ...]) -> None:
        self.url = url
        self.own: deque[int] = deque()
        self.room = (GPU_TOKENS - SYSTEM_TOKENS) // KV_BLOCK_SIZE
        blocks = len(system) // KV_BLOCK_SIZE
        self.system_tail = -blocks
        index.add_engine(url, {Tier.GPU: GPU_TOKENS})
        self.feed = EngineFeed(url, index, stale_after_s=3600.0, now=0.0)
        self.feed.replayed(self.feed.sync(), [])  # an empty replay buffer: live from seq 0
        self.feed.connected()
        self.seq = 0
        hashes = tuple(-(i + 1) for i in range(blocks))  # the shared prefix's engine hashes
        self._publish([BlockStored(block_hashes=hashes, parent_block_hash=None, token_ids=system,
                                   block_size=KV_BLOCK_SIZE, tier=Tier.GPU)])

    def _publish(self, events: list) -> None:
        self.feed.live(KvEventBatch(topic="", seq=self.seq, ts=0.0, events=tuple(events)))
        self.seq += 1

    def store(self, n: int) -> None:
        per = OWN_TOKENS // KV_BLOCK_SIZE
        hashes = tuple(n * per + i + 1 for i in range(per))
        tokens = _own_ids(n)
        events: list = [BlockStored(block_hashes=hashes, parent_block_hash=self.system_tail, token_ids=tokens,
                                    block_size=KV_BLOCK_SIZE, tier=Tier.GPU)]
        self.own.extend(hashes)
        evicted = [self.own.popleft() for _ in range(max(0, len(self.own) - self.room))]
        if evicted:
            events.append(BlockRemoved(block_hashes=tuple(evicted), tier=Tier.GPU))
        self._publish(events)


def _own_ids(n: int) -> tuple[int, ...]:
    """Prompt n's own token ids (distinct for every n)."""
    return tuple(1_000_000 + n * OWN_TOKENS + i for i in range(OWN_TOKENS))


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
    fed: dict[str, _Engine] = {}
    ids_system = tuple(range(1, SYSTEM_TOKENS + 1))
    if mode == "events":
        fed = {s.id: _Engine(s.id, index, ids_system) for s in states}
    scored = mode == "events" and "kv" in {f.name for f in dataclasses.fields(RouteRequest)}
    view = KvView(index=index, feeds={e.url: e.feed for e in fed.values()})
    for n in range(prompts):
        text = system + _text(n)
        if scored:  # issue 19's scoring: the prompt's ids and the feeds' view ride on the request
            ids = (*ids_system, *_own_ids(n))
            request = RouteRequest(model=MODEL, prompt=text, token_ids=ids, kv=view, now=1.0)
        else:
            request = RouteRequest(model=MODEL, prompt=text)
        decision = policy.select(request, states)
        if fed:
            fed[decision.engine.id].store(n)
    if fed and not all(e.feed.trusted(1.0) for e in fed.values()):
        raise RuntimeError("a feed left `live`: the measure would not be event mode's")
    gc.collect()
    rss = rss_bytes(os.getpid())
    cpu = time.process_time() - started
    return {"prompts": prompts, "engines": engines, "baseline_mb": baseline / 2**20, "rss_mb": rss / 2**20,
            "cpu_us_per_prompt": cpu / max(prompts, 1) * 1e6,
            "index_keys": float(sum(index.size(s.id, Tier.GPU) for s in states)) if fed else 0.0,
            "scored_by_events": float(scored)}


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
