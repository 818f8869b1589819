"""`least_load`: the engine with the fewest requests in flight plus engine-reported waiting.

Ties go to the smallest engine id, so the choice is stable whatever order the engines come
in. Outcome is always `new` (the policy never looks for cache).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

from contracts import OUTCOME_NEW
from router.routing.base import Decision, EngineState, NoEngineError, RouteRequest
from router.routing.policies._hashing import load


@dataclass(frozen=True, kw_only=True)
class LeastLoadConfig:
    """`least_load` takes no parameters."""


def least_loaded(engines: Sequence[EngineState]) -> EngineState:
    """The engine with the smallest load; ties to the smallest id."""
    if not engines:
        raise NoEngineError("no engine to route to")
    return min(engines, key=lambda e: (load(e), e.id))


class LeastLoadPolicy:
    """Picks the least-loaded candidate."""

    kind: ClassVar[str] = "least_load"

    def __init__(self, config: LeastLoadConfig | None = None) -> None:
        self.config = config or LeastLoadConfig()

    def select(self, request: RouteRequest, engines: Sequence[EngineState]) -> Decision:
        """The least-loaded engine."""
        return Decision(engine=least_loaded(engines), outcome=OUTCOME_NEW)

    def on_complete(self, request: RouteRequest, engine_id: str, ok: bool) -> None:
        """Nothing to learn: the app owns in-flight counts."""

    def on_engines_changed(self, engine_ids: Collection[str]) -> None:
        """Nothing to forget."""
