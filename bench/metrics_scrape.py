"""Prefix-cache hit rate over a run, from the engines' own `/metrics` counters.

`parse_prefix_counters` is pure (Prometheus text in, counters out); `scrape` is the thin
HTTP shell. vLLM counts prefix-cache *tokens*: queries_total = prompt tokens looked up,
hits_total = tokens found cached; the rate over a run is the ratio of the deltas. Current
names are preferred; an engine that only exports the legacy `gpu_prefix_cache_*` names is
read through those (never both for one engine, which would double count). A router's
`/metrics` mirrors every engine's counters under its own names
(`llmstack_router_engine_prefix_cache_*`, as last scraped, ≤ one scrape interval old), so a
run that can reach only the router (the post-deploy Job) still gets its hit rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from contracts import PATH_METRICS, ROUTER_ENGINE_PREFIX_HITS, ROUTER_ENGINE_PREFIX_QUERIES
from contracts.promtext import ENGINE_PREFIX_PAIRS, counter_pair, sum_samples

# (queries, hits) name pairs in order of preference: current vLLM, legacy vLLM, router mirror.
_PAIRS = (*ENGINE_PREFIX_PAIRS, (ROUTER_ENGINE_PREFIX_QUERIES, ROUTER_ENGINE_PREFIX_HITS))
_NAMES = frozenset(name for pair in _PAIRS for name in pair)


@dataclass(frozen=True, kw_only=True)
class PrefixCounters:
    """Prefix-cache token counters summed over one engine's label sets (or several engines)."""

    queries: float = 0.0
    hits: float = 0.0

    def __add__(self, other: PrefixCounters) -> PrefixCounters:
        return PrefixCounters(queries=self.queries + other.queries, hits=self.hits + other.hits)

    def __sub__(self, other: PrefixCounters) -> PrefixCounters:
        return PrefixCounters(queries=self.queries - other.queries, hits=self.hits - other.hits)

    @property
    def hit_rate(self) -> float | None:
        """hits / queries, or None when nothing was queried."""
        return self.hits / self.queries if self.queries > 0 else None


def parse_prefix_counters(text: str) -> PrefixCounters | None:
    """The prefix-cache counters in one exposition text (an engine's, or a router's mirror of
    all its engines), or None if it has none."""
    pair = counter_pair(sum_samples(text, _NAMES), _PAIRS)
    return None if pair is None else PrefixCounters(queries=pair[0], hits=pair[1])


def total(per_url: Mapping[str, PrefixCounters]) -> PrefixCounters:
    """Counters summed over engines."""
    out = PrefixCounters()
    for counters in per_url.values():
        out = out + counters
    return out


def run_delta(before: Mapping[str, PrefixCounters], after: Mapping[str, PrefixCounters]) -> PrefixCounters:
    """Counters gained over a run, over the engines scraped both before and after it.
    A counter that went down (engine restarted) counts from zero."""
    out = PrefixCounters()
    for url, end in after.items():
        start = before.get(url)
        if start is None:
            continue
        delta = end - start
        out = out + (delta if delta.queries >= 0 and delta.hits >= 0 else end)
    return out


def metrics_url(url: str) -> str:
    """The metrics URL to scrape: a bare server root gets `/metrics`; a path is kept."""
    scheme_end = url.find("://") + 3
    has_path = "/" in url[scheme_end:].rstrip("/")
    return url if has_path else url.rstrip("/") + PATH_METRICS


async def scrape(session, urls: Sequence[str], timeout_s: float = 5.0) -> dict[str, PrefixCounters]:
    """Counters of every URL that answered with vLLM prefix-cache counters (others left out)."""
    import aiohttp

    async def one(url: str) -> tuple[str, PrefixCounters | None]:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                if resp.status != 200:
                    return url, None
                return url, parse_prefix_counters(await resp.text())
        except (TimeoutError, aiohttp.ClientError, UnicodeDecodeError):
            return url, None

    results: Iterable[tuple[str, PrefixCounters | None]] = await asyncio.gather(*(one(u) for u in urls))
    return {url: counters for url, counters in results if counters is not None}
