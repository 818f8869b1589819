"""The load each engine's resident conversations bring: how often they have sent recently.

The current queue (in flight + waiting) shows a heavy user only while one of its requests is
open; between its bursts its engine looks idle. Here every conversation carries a count of its
recent requests, and an engine's load is the sum over the conversations that live there
(their *home*: where their last request went). When a conversation moves, its count moves
with it at once, so one move of a heavy user shows on both engines and nothing else follows
it. Conversations are known by their *tip* (`PrefixIndex`: the last block of the prompt they
sent last, which their next prompt contains); a prompt with no tip of its own is a new one.

Counted in requests, not seconds (policies read no clock): each routed request adds 1 to its
conversation and its home, and every count decays by `1 - 1/horizon` per request routed, so
a count is about the requests among the last `horizon` (the policy keeps that a fixed number
per engine). Kept lazily: a growing weight is
added instead of decaying every count, rescaled before it overflows. Bounded: at most
`max_conversations` are tracked, least recently seen forgotten (with their load). O(1) per
request. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Sequence

from router.routing.base import EngineState

_RESCALE_AT = 1e200


class Residents:
    def __init__(self, *, horizon: int, max_conversations: int = 1 << 16) -> None:
        self._growth = 1.0 + 1.0 / max(horizon, 1)
        self._weight = 1.0  # what the last request added; all counts are in these units
        self._max = max_conversations
        # Conversations by tip, least recently seen first (a request re-inserts its own under
        # the new tip); atomic values only, so the garbage collector has nothing to follow.
        self._homes: OrderedDict[int, str] = OrderedDict()
        self._counts: dict[int, float] = {}
        self._loads: dict[str, float] = {}  # engine id -> sum of its residents' counts (+ anonymous)
        self._total = 0.0  # sum of `_loads`

    def set_horizon(self, horizon: int) -> None:
        """Decay by `1 - 1/horizon` per request from now on (counts so far are kept)."""
        self._growth = 1.0 + 1.0 / max(horizon, 1)

    def load(self, engine_id: str) -> float:
        """Recent requests of the conversations whose home is `engine_id`."""
        return self._loads.get(engine_id, 0.0) / self._weight

    def own(self, tip: int) -> float:
        """Recent requests of the conversation whose last prompt ended at `tip` (0 if unknown)."""
        return self._counts.get(tip, 0.0) / self._weight

    def home(self, tip: int) -> str | None:
        """Where the conversation whose last prompt ended at `tip` lives (None if unknown)."""
        return self._homes.get(tip)

    def fitting(self, engines: Sequence[EngineState], factor: float) -> list[EngineState]:
        """Bounded loads: the engines that can be a new conversation's home with its first
        request, staying within `factor` x the mean load (that request counted); the least
        loaded always fits."""
        loads, weight = self._loads, self._weight * self._growth  # what the next request adds
        after = [loads.get(e.id, 0.0) + weight for e in engines]
        limit = max(factor * (sum(after) - (len(after) - 1) * weight) / len(after), min(after))
        return [e for e, load in zip(engines, after, strict=True) if load <= limit]

    def relief(self, tip: int, engines: Sequence[EngineState], crowded: float,
               floor: float = 0.0) -> list[EngineState]:
        """Where the conversation whose last prompt ended at `tip` may move when its home carries
        more than `crowded` x the mean load (over every engine with a load, and at least
        `engines`) and at least `floor` requests: the candidates that would carry less, with it
        and its next request, than its home carries now (so the busiest engine gets lighter,
        and moving back could never do the same). Empty when its home is not crowded or the
        conversation is unknown. O(1) unless the home is crowded."""
        home_id = self._homes.get(tip)
        if home_id is None:
            return []
        loads = self._loads
        home = loads.get(home_id, 0.0)
        if home < floor * self._weight or home * max(len(loads), len(engines)) <= crowded * self._total:
            return []
        room = home - self._counts[tip] - self._weight * self._growth
        return [e for e in engines if loads.get(e.id, 0.0) < room]

    def record(self, engine_id: str, previous: int | None, tip: int | None, *, start: bool = True) -> None:
        """A request went to `engine_id`: one of the conversation whose last prompt ended at
        `previous` (None: a new one), now ending at `tip` (None: too short to track). An
        unknown conversation is tracked from here if `start`, else the request only counts
        in the engine's load."""
        self._weight *= self._growth
        if self._weight > _RESCALE_AT:
            self._rescale()
        weight, loads = self._weight, self._loads
        home = self._homes.pop(previous, None) if previous is not None else None
        count = self._counts.pop(previous, 0.0) if home is not None and previous is not None else 0.0
        if home is not None and home != engine_id:
            self._unload(home, count)
            loads[engine_id] = loads.get(engine_id, 0.0) + count
            self._total += count
        loads[engine_id] = loads.get(engine_id, 0.0) + weight
        self._total += weight
        if tip is not None and (start or home is not None):
            self._homes[tip] = engine_id
            self._counts[tip] = count + weight
            if len(self._homes) > self._max:
                oldest, old_home = self._homes.popitem(last=False)
                self._unload(old_home, self._counts.pop(oldest))

    def retain(self, engine_ids: Collection[str]) -> None:
        """Forget the load of engines that are gone (their conversations get a new home)."""
        keep = set(engine_ids)
        self._loads = {i: load for i, load in self._loads.items() if i in keep}
        self._total = sum(self._loads.values())

    def __len__(self) -> int:
        return len(self._homes)

    def _unload(self, home: str, count: float) -> None:
        """Take a conversation's count off its home (if that engine is still known)."""
        load = self._loads.get(home)
        if load is not None:
            left = max(load - count, 0.0)
            self._loads[home] = left
            self._total -= load - left

    def _rescale(self) -> None:
        scale = 1.0 / self._weight
        self._counts = {tip: count * scale for tip, count in self._counts.items()}
        self._loads = {i: load * scale for i, load in self._loads.items()}
        self._total = sum(self._loads.values())
        self._weight = 1.0
