"""The discrete-event clock the virtual-time benchmarks share (`benchmarks.cache_pressure.sim`,
`benchmarks.lora.sim`): callbacks at virtual times, run in time order (ties in the order they were
scheduled), and engines stepped as `emulator.engine.EngineRuntime._run` steps them.

Background events (the router's periodic scrapes) do not keep a run alive: `busy` is true while
any other event is due, and a scrape reschedules itself only then.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any, Protocol

from emulator.scheduler import Scheduler, Step


class SteppedEngine(Protocol):
    """An emulated engine driven by the clock: its scheduler, where its next step starts, and
    whether a step is planned."""

    scheduler: Scheduler
    clock: float
    stepping: bool


class VirtualClock:
    """Events at virtual times; `now` is the time of the event running."""

    def __init__(self) -> None:
        self.now = 0.0
        self._events: list[tuple[float, int, bool, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._pending = 0  # events due other than background ones

    @property
    def busy(self) -> bool:
        """Whether an event other than a background one is due."""
        return self._pending > 0

    def at(self, when: float, fn: Callable[..., None], *args: Any, background: bool = False) -> None:
        """Run `fn(*args)` at virtual time `when`."""
        heapq.heappush(self._events, (when, next(self._seq), background, fn, args))
        self._pending += not background

    def run_events(self, until: Callable[[], bool] | None = None) -> None:
        """Run the events in time order until none is left (or `until()` holds)."""
        events = self._events
        while events and not (until is not None and until()):
            when, _, background, fn, args = heapq.heappop(events)
            self._pending -= not background
            self.now = when
            fn(*args)

    def plan(self, engine: SteppedEngine, deliver: Callable[[Any, Step], None]) -> None:
        """Plan `engine`'s next step (`EngineRuntime._run`: it starts where the last ended, or now
        when the engine was idle), `deliver(engine, step)` at its end."""
        if engine.scheduler.num_running == 0:
            engine.clock = max(engine.clock, self.now)
        step = engine.scheduler.step(engine.clock)
        engine.stepping = step is not None
        if step is not None:
            engine.clock += step.duration
            self.at(engine.clock, deliver, engine, step)
