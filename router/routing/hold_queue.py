"""The hold queue: requests no engine can take yet, per model, in the order they will go.

When no engine of a model can take a request (none exists yet: a model scaled to zero; all
unhealthy; all at the router's per-engine bound), the router holds it here instead of
answering 503. What leaves, and in which order, is decided in three tiers (the dispatch
hierarchy of llm-d's flow control, `pkg/epp/flowcontrol`, reimplemented here):

1. **Priority**: the highest non-empty priority band goes first (band 0 is the highest).
2. **Fairness**: within a band, callers (API key, else `x-user-id`, else client address)
   take turns, round robin over the callers that hold something: a caller who sent a
   hundred requests and one who sent one each get every other turn.
3. **Order**: within a caller, first come first served.

Bounds, per model: at most `max_held` requests and each held at most `max_wait_s` (the
deadline is fixed at admission; the shell enforces it and answers a clean 503). When the
model's queue is full a newcomer may *displace* a held request, so a flood cannot lock
others out: the victim is the newest request of the caller holding the most in the lowest
band, taken only if it is in a lower band than the newcomer, or in the same band and its
caller holds at least two more than the newcomer's. Otherwise the newcomer is refused
(`QueueFull`). Both the displaced and the refused are answered 429 by the shell: nothing
held is ever dropped without an answer.

Pure: no I/O, no clock (`now` is passed in), no asyncio; the shell keeps its own handle per
item in `Held.token`.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The model's queue is at its bound and the newcomer outranks nobody held."""


@dataclass(frozen=True, kw_only=True)
class HoldLimits:
    """The queue's bounds (validated by the router's settings)."""

    max_held: int  # requests held per model
    max_wait_s: float  # longest a request is held
    bands: int = 3  # priority bands; 0 is the highest


@dataclass(slots=True, eq=False, kw_only=True)
class Held:
    """One held request. `seq` orders admissions; `token` is the shell's handle."""

    model: str
    caller: str
    band: int
    seq: int
    deadline: float
    token: Any = None


@dataclass(slots=True)
class _Band:
    """One priority band of one model: callers in turn order, each with its FCFS deque."""

    callers: OrderedDict[str, deque[Held]] = field(default_factory=OrderedDict)
    count: int = 0

    def push(self, item: Held, *, front: bool = False) -> None:
        items = self.callers.get(item.caller)
        if items is None:
            items = self.callers[item.caller] = deque()
            if front:
                self.callers.move_to_end(item.caller, last=False)
        if front:
            items.appendleft(item)
        else:
            items.append(item)
        self.count += 1

    def pop(self) -> Held:
        """The head of the caller whose turn it is; that caller's next turn comes after everyone's."""
        caller, items = next(iter(self.callers.items()))
        item = items.popleft()
        if items:
            self.callers.move_to_end(caller)
        else:
            del self.callers[caller]
        self.count -= 1
        return item

    def remove(self, item: Held) -> bool:
        items = self.callers.get(item.caller)
        if items is None or item not in items:
            return False
        items.remove(item)
        if not items:
            del self.callers[item.caller]
        self.count -= 1
        return True

    def heaviest(self) -> deque[Held] | None:
        """The deque of the caller holding the most here (the first such in turn order)."""
        return max(self.callers.values(), key=len, default=None)


class _ModelQueue:
    def __init__(self, bands: int) -> None:
        self.bands = [_Band() for _ in range(bands)]
        self.count = 0
        self.per_caller: dict[str, int] = {}

    def push(self, item: Held, *, front: bool = False) -> None:
        self.bands[item.band].push(item, front=front)
        self.count += 1
        self.per_caller[item.caller] = self.per_caller.get(item.caller, 0) + 1

    def _left(self, item: Held) -> None:
        self.count -= 1
        left = self.per_caller[item.caller] - 1
        if left:
            self.per_caller[item.caller] = left
        else:
            del self.per_caller[item.caller]

    def pop(self) -> Held | None:
        for band in self.bands:
            if band.count:
                item = band.pop()
                self._left(item)
                return item
        return None

    def remove(self, item: Held) -> bool:
        if self.bands[item.band].remove(item):
            self._left(item)
            return True
        return False

    def victim(self, band: int, caller: str) -> Held | None:
        """Whom a newcomer in `band` from `caller` may displace (see the module docstring)."""
        for low in range(len(self.bands) - 1, band - 1, -1):
            items = self.bands[low].heaviest()
            if items is None:
                continue
            newest = items[-1]
            if low > band:
                return newest
            mine = len(self.bands[low].callers.get(caller, ()))
            return newest if newest.caller != caller and len(items) >= mine + 2 else None
        return None


class HoldQueue:
    """Every model's held requests; see the module docstring for the order and the bounds."""

    def __init__(self, limits: HoldLimits) -> None:
        self.limits = limits
        self._models: dict[str, _ModelQueue] = {}
        self._seq = 0
        self.total = 0

    def admit(self, model: str, caller: str, band: int, now: float) -> tuple[Held, Held | None]:
        """Hold a new request; returns it and the request it displaced (None if none).
        Raises `QueueFull` when the model is at its bound and nobody can be displaced."""
        limits = self.limits
        if not 0 <= band < limits.bands:
            raise ValueError(f"band must be in 0..{limits.bands - 1} (got {band})")
        queue = self._models.get(model)
        if queue is None:
            queue = self._models[model] = _ModelQueue(limits.bands)
        displaced = None
        if queue.count >= limits.max_held:
            displaced = queue.victim(band, caller)
            if displaced is None:
                raise QueueFull(model)
            queue.remove(displaced)
            self.total -= 1
        self._seq += 1
        item = Held(model=model, caller=caller, band=band, seq=self._seq, deadline=now + limits.max_wait_s)
        queue.push(item)
        self.total += 1
        return item, displaced

    def pop(self, model: str) -> Held | None:
        """The next request of `model` to send on (priority, then caller turns, then FCFS)."""
        queue = self._models.get(model)
        item = queue.pop() if queue is not None else None
        if item is not None:
            self.total -= 1
        return item

    def requeue(self, item: Held) -> None:
        """Put back a request that was popped but found no engine after all: first in its
        caller's line and its caller first in turn, with its original deadline."""
        queue = self._models.get(item.model)
        if queue is None:
            queue = self._models[item.model] = _ModelQueue(self.limits.bands)
        queue.push(item, front=True)
        self.total += 1

    def remove(self, item: Held) -> bool:
        """Take out a request that is leaving (client gone, deadline passed); False if it was
        not held (already popped or displaced)."""
        queue = self._models.get(item.model)
        if queue is not None and queue.remove(item):
            self.total -= 1
            return True
        return False

    def held(self, model: str) -> int:
        queue = self._models.get(model)
        return queue.count if queue is not None else 0

    def held_by(self, model: str, caller: str) -> int:
        queue = self._models.get(model)
        return queue.per_caller.get(caller, 0) if queue is not None else 0

    def models(self) -> list[str]:
        """The models holding at least one request."""
        return [m for m, q in self._models.items() if q.count]
