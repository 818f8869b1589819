"""Deterministic placement helpers: rendezvous hashing, a consistent-hash ring, bounded loads.

Everything hashes with xxh3 (never `hash()`, whose seed differs per process), so every router
worker and replica computes the same placement from the same inputs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence

import xxhash

from router.routing.base import EngineState

_hash = xxhash.xxh3_64_intdigest


def load(engine: EngineState) -> int:
    """An engine's load: this router's in-flight requests plus the engine-reported queue."""
    return engine.in_flight + engine.waiting


def load_limit(engines: Sequence[EngineState], factor: float, floor: float) -> float:
    """Consistent hashing with bounded loads: an engine may take one more request while its
    load + 1 stays within `factor` × the average load counting the new request, and never
    counts as overloaded below `floor` (so light traffic keeps its placement)."""
    total = sum(e.in_flight + e.waiting for e in engines)
    return max(factor * (total + 1) / len(engines), floor)


def has_room(engine: EngineState, limit: float) -> bool:
    """Whether the engine can take one more request under `limit` (see `load_limit`)."""
    return engine.in_flight + engine.waiting + 1 <= limit


def rendezvous_home(engines: Sequence[EngineState], key: int, encoded: Mapping[str, bytes]) -> EngineState:
    """Rendezvous (highest-random-weight) hashing: the engine whose id, hashed with `key` as the
    seed, scores highest. Removing an engine moves only the keys it held. `encoded` maps each
    id to its UTF-8 bytes (kept by the caller so the hot path does not re-encode)."""
    return max(engines, key=lambda e: _hash(encoded[e.id], key))


def key_hash(key: str) -> int:
    """64-bit hash of a session key (UTF-8)."""
    return _hash(key.encode("utf-8", "surrogatepass"))


def bytes_hash(data: bytes) -> int:
    """64-bit hash of raw bytes."""
    return _hash(data)


class HashRing:
    """A consistent-hash ring with `vnodes` virtual nodes per engine id."""

    def __init__(self, engine_ids: Sequence[str], vnodes: int) -> None:
        points = sorted(
            (_hash(f"{engine_id}#{i}".encode()), engine_id) for engine_id in engine_ids for i in range(vnodes)
        )
        self.ids = frozenset(engine_ids)
        self._hashes = [h for h, _ in points]
        self._owners = [owner for _, owner in points]

    def walk(self, key: int) -> Iterator[str]:
        """Distinct engine ids clockwise from `key`: the owner first, then the fallbacks."""
        n = len(self._owners)
        start = bisect_right(self._hashes, key)
        seen: set[str] = set()
        for step in range(n):
            owner = self._owners[(start + step) % n]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == len(self.ids):
                    return
