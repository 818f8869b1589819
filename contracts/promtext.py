"""Reading Prometheus text exposition: pure, shared by the router's engine scraper and the
benchmark's hit-rate scrape.

Only what both need: the sum of a metric's samples over its label sets, and the choice of
one (queries, hits) counter pair among alternative names (current vLLM, legacy vLLM, the
router's mirror), never mixing two names for one figure, which would double count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from contracts import (
    VLLM_PREFIX_HITS,
    VLLM_PREFIX_HITS_LEGACY,
    VLLM_PREFIX_QUERIES,
    VLLM_PREFIX_QUERIES_LEGACY,
)

# An engine's prefix-cache (queries, hits) counters, current names first.
ENGINE_PREFIX_PAIRS = (
    (VLLM_PREFIX_QUERIES, VLLM_PREFIX_HITS),
    (VLLM_PREFIX_QUERIES_LEGACY, VLLM_PREFIX_HITS_LEGACY),
)


def _sample(line: str, names: Collection[str]) -> tuple[str, float] | None:
    if not line or line.startswith("#"):
        return None
    name_end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=-1)
    if name_end < 0 or line[:name_end] not in names:
        return None
    rest = line[line.rfind("}") + 1 :] if "}" in line else line[name_end:]
    try:
        return line[:name_end], float(rest.split()[0])
    except (IndexError, ValueError):
        return None


def sum_samples(text: str, names: Collection[str]) -> dict[str, float]:
    """Each wanted metric's samples summed over label sets; comments, other metrics and
    malformed lines are passed over; a metric with no sample is absent."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        sample = _sample(line.strip(), names)
        if sample is not None:
            sums[sample[0]] = sums.get(sample[0], 0.0) + sample[1]
    return sums


def counter_pair(sums: Mapping[str, float], pairs: Iterable[tuple[str, str]]) -> tuple[float, float] | None:
    """(queries, hits) from the first pair whose queries counter is present, or None."""
    for queries, hits in pairs:
        if queries in sums:
            return sums[queries], sums.get(hits, 0.0)
    return None
