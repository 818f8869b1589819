"""Scraping the engines' own load figures from their Prometheus `/metrics`.

`parse_load` is pure: it sums `vllm:num_requests_waiting` / `running` over label sets and
reads the KV-cache usage under its current or legacy name. `MetricsScraper` is the thin
loop that fetches `/metrics` from each healthy engine and writes the figures into the
engines' live state, where the load-aware policies read them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from router.contracts import PATH_METRICS, VLLM_KV_USAGE, VLLM_KV_USAGE_LEGACY, VLLM_RUNNING, VLLM_WAITING
from router.engines import EngineRegistry
from router.errors import UpstreamError
from router.upstream import Upstream

_WANTED = frozenset((VLLM_WAITING, VLLM_RUNNING, VLLM_KV_USAGE, VLLM_KV_USAGE_LEGACY))


@dataclass(frozen=True, slots=True)
class EngineLoad:
    waiting: int = 0
    running: int = 0
    kv_usage: float | None = None  # 0..1; None when the engine exports neither name


def _sample(line: str) -> tuple[str, float] | None:
    brace = line.find("{")
    if brace >= 0:
        name, rest = line[:brace], line[line.rfind("}") + 1 :]
    else:
        name, _, rest = line.partition(" ")
    if name not in _WANTED:
        return None
    try:
        return name, float(rest.split()[0])
    except (IndexError, ValueError):
        return None


def parse_load(text: str) -> EngineLoad:
    """Load figures from a vLLM `/metrics` page (summed over label sets)."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        sample = _sample(line)
        if sample is not None:
            sums[sample[0]] = sums.get(sample[0], 0.0) + sample[1]
    kv = sums.get(VLLM_KV_USAGE, sums.get(VLLM_KV_USAGE_LEGACY))
    return EngineLoad(waiting=int(sums.get(VLLM_WAITING, 0)), running=int(sums.get(VLLM_RUNNING, 0)),
                      kv_usage=kv)


class MetricsScraper:
    def __init__(self, registry: EngineRegistry, upstream: Upstream, *, interval_s: float,
                 timeout_s: float) -> None:
        self.registry = registry
        self.upstream = upstream
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.kv_usage: dict[str, float] = {}

    async def run(self) -> None:
        """Scrape forever, one round every `interval_s` (cancelled by the app)."""
        while True:
            await self.scrape_all()
            await asyncio.sleep(self.interval_s)

    async def scrape_all(self) -> None:
        healthy = [url for url, state in self.registry.states.items() if state.healthy]
        await asyncio.gather(*(self._scrape(url) for url in healthy))

    async def _scrape(self, url: str) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await self.upstream.request(url, "GET", PATH_METRICS, timeout=self.timeout_s)
                try:
                    body = await resp.read()
                finally:
                    resp.release()
        except (UpstreamError, TimeoutError, OSError):
            return  # health checks decide about rotation; stale figures stay until the next round
        state = self.registry.states.get(url)
        if resp.status != 200 or state is None:
            return
        load = parse_load(body.decode("utf-8", "replace"))
        state.waiting, state.running = load.waiting, load.running
        if load.kv_usage is not None:
            self.kv_usage[url] = load.kv_usage
