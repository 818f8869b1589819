"""Scraping the engines' own load figures from their Prometheus `/metrics`.

`parse_load` is pure: it sums `vllm:num_requests_waiting` / `running` over label sets,
reads the KV-cache usage and prefix-cache counters under their current or legacy names, and
the LoRA state from `vllm:lora_requests_info` (`parse_lora_info`).
`MetricsScraper` is the thin loop that fetches `/metrics` from each healthy engine, writes
the load into the engines' live state (where the load-aware policies read it) and keeps the
last figures per engine for the router's own `/metrics` to mirror.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass

from contracts import (
    PATH_METRICS,
    VLLM_KV_USAGE,
    VLLM_KV_USAGE_LEGACY,
    VLLM_LORA_INFO,
    VLLM_LORA_MAX_LABEL,
    VLLM_LORA_RUNNING_LABEL,
    VLLM_LORA_WAITING_LABEL,
    VLLM_RUNNING,
    VLLM_WAITING,
)
from contracts.promtext import ENGINE_PREFIX_PAIRS, counter_pair, sum_samples
from router.routing.engines import EngineRegistry
from router.shell.errors import UpstreamError
from router.shell.upstream import Upstream

_WANTED = frozenset((VLLM_WAITING, VLLM_RUNNING, VLLM_KV_USAGE, VLLM_KV_USAGE_LEGACY,
                     *(name for pair in ENGINE_PREFIX_PAIRS for name in pair)))


@dataclass(frozen=True, slots=True)
class LoraInfo:
    """An engine's LoRA state as its newest `vllm:lora_requests_info` series says."""

    running: frozenset[str] = frozenset()  # adapters with requests running
    waiting: frozenset[str] = frozenset()  # adapters with requests waiting (for a slot or the batch)
    max_loras: int = 0  # GPU adapter slots (--max-loras)


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_lora_info(text: str) -> LoraInfo | None:
    """The newest `vllm:lora_requests_info` series of a `/metrics` page, or None when there is
    none (an engine without LoRA). vLLM 0.33 sets the gauge to the current time on each stats
    update, under labels naming the running and waiting adapters (comma-joined) and `max_lora`
    (vllm/v1/metrics/loggers.py); older label sets stay exported with older times, so the
    largest value is the current state."""
    newest: tuple[float, str] | None = None
    for line in text.splitlines():
        if not line.startswith(VLLM_LORA_INFO + "{"):
            continue
        head, _, tail = line.rpartition("}")
        try:
            value = float(tail.split()[0])
        except (IndexError, ValueError):
            continue
        if newest is None or value > newest[0]:
            newest = (value, head)
    if newest is None:
        return None
    labels = dict(_LABEL.findall(newest[1]))
    slots = labels.get(VLLM_LORA_MAX_LABEL, "")
    return LoraInfo(running=_names(labels.get(VLLM_LORA_RUNNING_LABEL, "")),
                    waiting=_names(labels.get(VLLM_LORA_WAITING_LABEL, "")),
                    max_loras=int(slots) if slots.isdigit() else 0)


def _names(joined: str) -> frozenset[str]:
    return frozenset(name for name in joined.split(",") if name)


@dataclass(frozen=True, slots=True)
class EngineLoad:
    waiting: int = 0
    running: int = 0
    kv_usage: float | None = None  # 0..1; None when the engine exports neither name
    prefix_queries: float | None = None  # prefix-cache tokens looked up (counter); None: not exported
    prefix_hits: float = 0.0  # prefix-cache tokens found (counter)
    lora: LoraInfo | None = None  # None: the engine exports no LoRA state


def parse_load(text: str) -> EngineLoad:
    """Load figures from a vLLM `/metrics` page (summed over label sets). Counts that are not
    finite read 0; the other figures keep NaN / +Inf, which the router's /metrics can carry."""
    sums = sum_samples(text, _WANTED)
    kv = sums.get(VLLM_KV_USAGE, sums.get(VLLM_KV_USAGE_LEGACY))
    queries, hits = counter_pair(sums, ENGINE_PREFIX_PAIRS) or (None, 0.0)
    return EngineLoad(waiting=_count(sums.get(VLLM_WAITING, 0.0)),
                      running=_count(sums.get(VLLM_RUNNING, 0.0)), kv_usage=kv,
                      prefix_queries=queries, prefix_hits=hits,
                      lora=parse_lora_info(text) if VLLM_LORA_INFO in text else None)


def _count(value: float) -> int:
    """A request count from a scraped sample; NaN, ±Inf and negatives (a broken engine) read 0."""
    return int(value) if math.isfinite(value) and value > 0 else 0


def _fraction(value: float | None) -> float:
    """A KV-usage gauge as the cost model reads it: clamped to 0..1; absent or NaN reads 0."""
    return min(max(value, 0.0), 1.0) if value is not None and not math.isnan(value) else 0.0


_NO_LORA = LoraInfo()


class MetricsScraper:
    def __init__(self, registry: EngineRegistry, upstream: Upstream, *, interval_s: float,
                 timeout_s: float) -> None:
        self.registry = registry
        self.upstream = upstream
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.loads: dict[str, EngineLoad] = {}  # last figures per engine, mirrored on /metrics

    async def run(self) -> None:
        """Scrape forever, one round every `interval_s` (cancelled by the app)."""
        while True:
            await self.scrape_all()
            await asyncio.sleep(self.interval_s)

    async def scrape_all(self) -> None:
        states = self.registry.states
        for gone in [url for url in self.loads if url not in states]:
            del self.loads[gone]  # discovery removed it: stop mirroring its figures
        healthy = [url for url, state in states.items() if state.healthy]
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
        state.kv_usage = _fraction(load.kv_usage)
        lora = load.lora or _NO_LORA
        state.lora_running, state.lora_waiting, state.max_loras = lora.running, lora.waiting, lora.max_loras
        self.loads[url] = load
