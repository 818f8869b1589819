"""The LoRA benchmark's scenarios, each a function of (quick, seed) returning checked figures.

- `first_request`: engines warmed by Zipf traffic (their slots in use), then a newly declared
  adapter's first request (on disk everywhere): its TTFT on the policy clock, target <= 5 s.
- `placement`: 4 engines x `max_loras` 4, 40 adapters (Zipf), multi-round QA; after a warm-up,
  per 1,000 requests the GPU-slot loads + evictions (target <= 1) and the model-cache reads
  (disk loads + CPU-cache evictions), and TTFT p99 against a run where every user has the same
  adapter (target <= 1.2x); the prefix policy (with `_lora` placement) and round robin with
  bounded loads (`baseline`) side by side; and the floor: the offline optimum's loads + evictions
  on the same requests (`belady`), which no placement can beat.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.lora.baseline import RoundRobinLoad
from benchmarks.lora.sim import Served, Simulation, Workload
from router.routing.base import RoutingPolicy
from router.routing.policies.prefix import PrefixPolicy

FIRST_REQUEST_TARGET_S = 5.0
LOADS_TARGET_PER_1K = 1.0
TTFT_P99_TARGET_RATIO = 1.2


@dataclass(frozen=True)
class Check:
    """One printed figure, and its target when it has one."""

    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None  # None: a figure without a target (context)


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def workload(quick: bool) -> Workload:
    """The run's shape: the full one, or a small one for the test suite."""
    return Workload(conversations=60, rounds=10) if quick else Workload()


def _warm(quick: bool) -> int:
    return 200 if quick else 1000


def first_request(quick: bool, seed: int) -> list[Check]:
    """TTFT of a newly declared adapter's first request on warm engines."""
    work = workload(quick)
    sim = Simulation(work, PrefixPolicy(), seed)
    warm = _warm(quick)
    sim.run(until=lambda: len(sim.served) >= warm)
    for engine in sim.engines:
        engine.ids["adapter-new"] = len(engine.ids) + 1
    probe = Served(user=-1, adapter="adapter-new", round=0, launch=sim.now)
    prompt = f"<|system|>\n{sim.system}\n<|user|>\nfirst question for the new adapter\n"
    sim.send(probe, prompt, lambda _: None)
    sim.run()
    ttft = probe.ttft_s
    assert ttft is not None
    return [Check("first request to a newly declared adapter, TTFT", ttft, "s",
                  f"<= {FIRST_REQUEST_TARGET_S:g} s", ttft <= FIRST_REQUEST_TARGET_S)]


@dataclass(frozen=True)
class _Run:
    ttft_p99: float
    gpu_per_1k: float
    reads_per_1k: float
    requests: int
    loads_per_conversation: float  # GPU-slot loads per conversation begun in the window
    floor_per_1k: float  # loads + evictions of the offline optimum (`belady`) per 1,000 requests
    floor_per_conversation: float  # its loads per conversation begun


def belady(adapters: list[str], slots: int, start: int) -> tuple[int, int]:
    """Loads and evictions, from index `start` on, of the offline optimum (Belady's MIN: evict the
    adapter next wanted furthest ahead) serving `adapters` in order from one pool of `slots`.

    A lower bound for any placement on engines whose slots add up to `slots`, given this order of
    requests: pooling the slots only removes constraints (an adapter resident on one engine serves
    a request sent to another for free; no batch limit), and MIN is optimal for one cache, with or
    without loading ahead of demand."""
    never = len(adapters)
    upcoming = [never] * len(adapters)
    seen: dict[str, int] = {}
    for i in range(len(adapters) - 1, -1, -1):
        upcoming[i] = seen.get(adapters[i], never)
        seen[adapters[i]] = i
    cache: dict[str, int] = {}  # adapter -> index of its next request
    loads = evictions = 0
    for i, adapter in enumerate(adapters):
        if adapter not in cache:
            if len(cache) >= slots:
                del cache[max(cache, key=cache.__getitem__)]
                evictions += i >= start
            loads += i >= start
        cache[adapter] = upcoming[i]
    return loads, evictions


def _measure(work: Workload, policy: RoutingPolicy, seed: int, warm: int,
             adapter_of: Callable | None = None) -> _Run:
    sim = Simulation(work, policy, seed, adapter_of=adapter_of)
    snap: list = []

    def until() -> bool:
        if not snap and len(sim.served) >= warm:
            snap.append(copy.copy(sim.counters))
        return False
    served = sim.run(until)
    measured = served[warm:]
    after, before = sim.counters, snap[0]
    n = len(measured)
    gpu = after.gpu_loads - before.gpu_loads + after.gpu_evictions - before.gpu_evictions
    reads = after.disk_loads - before.disk_loads + after.cpu_evictions - before.cpu_evictions
    ttfts = [s.ttft_s for s in measured if s.ttft_s is not None]
    begun = sum(s.round == 0 for s in measured) or 1
    loads, evictions = belady([s.adapter for s in served], work.engines * work.max_loras, warm)
    return _Run(p99(ttfts), gpu * 1000 / n, reads * 1000 / n, n, (after.gpu_loads - before.gpu_loads) / begun,
                (loads + evictions) * 1000 / n, loads / begun)


def placement(quick: bool, seed: int) -> list[Check]:
    """Loads + evictions and TTFT p99 of many adapters against one, prefix vs the baseline."""
    work, warm = workload(quick), _warm(quick)
    prefix = _measure(work, PrefixPolicy(), seed, warm)
    baseline = _measure(work, RoundRobinLoad(), seed, warm)
    single = _measure(work, PrefixPolicy(), seed, warm, adapter_of=lambda _: "adapter-01")
    ratio = prefix.ttft_p99 / single.ttft_p99
    return [
        Check(f"prefix: GPU-slot loads + evictions per 1,000 requests ({prefix.requests} measured)",
              prefix.gpu_per_1k, "", f"<= {LOADS_TARGET_PER_1K:g}", prefix.gpu_per_1k <= LOADS_TARGET_PER_1K),
        Check("prefix: model-cache reads (disk loads + CPU evictions) per 1,000 requests",
              prefix.reads_per_1k, ""),
        Check("prefix: GPU-slot loads per conversation begun", prefix.loads_per_conversation, ""),
        Check("floor: offline optimum (Belady, all slots pooled) on prefix's requests, loads + evictions"
              " per 1,000", prefix.floor_per_1k, ""),
        Check("floor: offline optimum, GPU-slot loads per conversation begun",
              prefix.floor_per_conversation, ""),
        Check("prefix: TTFT p99, 40 adapters / one adapter", ratio, "x", f"<= {TTFT_P99_TARGET_RATIO:g}x",
              ratio <= TTFT_P99_TARGET_RATIO),
        Check("prefix: TTFT p99, 40 adapters", prefix.ttft_p99, "s"),
        Check("prefix: TTFT p99, one adapter", single.ttft_p99, "s"),
        Check("round robin + load: GPU-slot loads + evictions per 1,000 requests", baseline.gpu_per_1k, ""),
        Check("round robin + load: model-cache reads per 1,000 requests", baseline.reads_per_1k, ""),
        Check("round robin + load: GPU-slot loads per conversation begun",
              baseline.loads_per_conversation, ""),
        Check("round robin + load: TTFT p99, 40 adapters / one adapter (prefix)",
              baseline.ttft_p99 / single.ttft_p99, "x"),
    ]
