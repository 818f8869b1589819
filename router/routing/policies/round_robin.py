"""`round_robin`: each request to the next engine in turn, blind to cache and load.

The baseline the seed measured against: it spreads every conversation over every engine.
Outcome is always `new` (the policy never looks for cache).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

from contracts import OUTCOME_NEW
from router.routing.base import Decision, EngineState, NoEngineError, RouteRequest


@dataclass(frozen=True, kw_only=True)
class RoundRobinConfig:
    """`round_robin` takes no parameters."""


class RoundRobinPolicy:
    """Cycles through the candidates in the order given."""

    kind: ClassVar[str] = "round_robin"

    def __init__(self, config: RoundRobinConfig | None = None) -> None:
        self.config = config or RoundRobinConfig()
        self._turn = 0

    def select(self, request: RouteRequest, engines: Sequence[EngineState]) -> Decision:
        """The next engine in turn."""
        if not engines:
            raise NoEngineError("no engine to route to")
        engine = engines[self._turn % len(engines)]
        self._turn += 1
        return Decision(engine=engine, outcome=OUTCOME_NEW)

    def on_complete(self, request: RouteRequest, engine_id: str, ok: bool) -> None:
        """Nothing to learn."""

    def on_engines_changed(self, engine_ids: Collection[str]) -> None:
        """Nothing to forget."""
