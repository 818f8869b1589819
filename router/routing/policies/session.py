"""`session`: a session key (header, default `x-user-id`) sticks to one engine.

Consistent hashing with bounded loads: the key hashes (xxh3) onto a ring holding
`virtual_nodes` points per candidate engine; walking clockwise, the first engine with room
under the bounded-load limit (`load_factor` × the average load, never below `load_floor`)
takes the request. When an engine leaves, only its own keys move. Requests without a key go
to the least-loaded engine.

Outcomes: `cache_hit` when the key's home engine took it, `load_fallback` when the home was
skipped for load, `new` when there was no key.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

from contracts import OUTCOME_CACHE_HIT, OUTCOME_LOAD_FALLBACK, OUTCOME_NEW
from router.routing.base import Decision, EngineState, NoEngineError, RouteRequest
from router.routing.policies._hashing import HashRing, has_room, key_hash, load_limit
from router.routing.policies._params import require_int, require_number
from router.routing.policies.least_load import least_loaded

_RING_CACHE = 16  # distinct candidate sets whose rings are kept


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """Parameters of `session`."""

    virtual_nodes: int = 160  # ring points per engine: more spreads keys more evenly
    load_factor: float = 1.25  # bounded loads: an engine takes at most this × the average load
    load_floor: float = 4.0  # ... but is never considered full below this many requests

    def __post_init__(self) -> None:
        require_int("virtual_nodes", self.virtual_nodes, minimum=1, maximum=4096)
        require_number("load_factor", self.load_factor, minimum=1.0)
        require_number("load_floor", self.load_floor, minimum=0.0)


class SessionPolicy:
    """Consistent hashing with bounded loads on the request's session key."""

    kind: ClassVar[str] = "session"

    def __init__(self, config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        self._rings: dict[tuple[str, ...], HashRing] = {}

    def select(self, request: RouteRequest, engines: Sequence[EngineState]) -> Decision:
        """The key's home engine, or the next one clockwise with room."""
        if not engines:
            raise NoEngineError("no engine to route to")
        if not request.session_key:
            return Decision(engine=least_loaded(engines), outcome=OUTCOME_NEW)
        by_id = {e.id: e for e in engines}
        limit = load_limit(engines, self.config.load_factor, self.config.load_floor)
        for rank, engine_id in enumerate(self._ring(by_id).walk(key_hash(request.session_key))):
            engine = by_id[engine_id]
            if has_room(engine, limit):
                outcome = OUTCOME_CACHE_HIT if rank == 0 else OUTCOME_LOAD_FALLBACK
                return Decision(engine=engine, outcome=outcome)
        return Decision(engine=least_loaded(engines), outcome=OUTCOME_LOAD_FALLBACK)

    def _ring(self, by_id: dict[str, EngineState]) -> HashRing:
        ids = tuple(sorted(by_id))
        ring = self._rings.get(ids)
        if ring is None:
            if len(self._rings) >= _RING_CACHE:
                self._rings.clear()
            ring = self._rings[ids] = HashRing(ids, self.config.virtual_nodes)
        return ring

    def on_complete(self, request: RouteRequest, engine_id: str, ok: bool) -> None:
        """Nothing to learn: the app owns in-flight counts."""

    def on_engines_changed(self, engine_ids: Collection[str]) -> None:
        """Drop cached rings: the next request builds one for the new set."""
        self._rings.clear()
