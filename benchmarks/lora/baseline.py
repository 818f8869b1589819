"""The baseline the LoRA placement is measured against: round robin with bounded loads (pure).

Each request goes to the next engine in turn that has room under the same bounded-load limit the
prefix policy uses (`_hashing.load_limit`: 1.5 x the mean load, at least 4 requests), blind to
cache and adapters: what a LoRA-unaware balancer does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import ClassVar

from contracts import OUTCOME_NEW
from router.routing.base import Decision, EngineState, NoEngineError, RouteRequest
from router.routing.policies._hashing import has_room, load_limit


class RoundRobinLoad:
    """Round robin over the engines with room."""

    kind: ClassVar[str] = "round_robin_load"

    def __init__(self, factor: float = 1.5, floor: float = 4.0) -> None:
        self.factor, self.floor = factor, floor
        self._next = 0

    def select(self, request: RouteRequest, engines: Sequence[EngineState]) -> Decision:
        """The next engine in turn with room (any, when none has)."""
        if not engines:
            raise NoEngineError("no engine to route to")
        limit = load_limit(engines, self.factor, self.floor)
        n = len(engines)
        for step in range(n):
            engine = engines[(self._next + step) % n]
            if has_room(engine, limit):
                self._next = (self._next + step + 1) % n
                return Decision(engine=engine, outcome=OUTCOME_NEW)
        self._next = (self._next + 1) % n
        return Decision(engine=engines[self._next - 1], outcome=OUTCOME_NEW)

    def on_complete(self, request: RouteRequest, engine_id: str, ok: bool) -> None:
        """Nothing to learn."""

    def on_engines_changed(self, engine_ids: Collection[str]) -> None:
        """Nothing to forget."""
