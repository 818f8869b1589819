"""Holding requests until an engine can take them: the hold queue's I/O shell.

The proxy calls `Holding.wait` when no engine of a request's model can take it (none exists:
a model scaled to zero; all out of rotation; all at `max_in_flight_per_engine`) and, while
any request of a model is held, for every newcomer of that model too, so nobody overtakes
the queue. `wait` admits the request to the pure `HoldQueue` (order, fairness, bounds) and
awaits a future. The registry calls `kick` after every change of its candidates (an engine
added, back in rotation, its models learned) and the proxy after every request it finishes;
`kick` schedules one dispatch pass in the event loop, which wakes as many held requests,
in the queue's order, as the model's engines have room for. A woken request then picks its
engine in the same loop step, so nothing can take its place in between.

Every held request leaves with an answer: sent on to an engine, or refused with a 429
(`HoldRefused`: the queue at its bound, or displaced) or a 503 (`HoldTimedOut`: its deadline
passed, or the router stopped) in OpenAI's error shape with `Retry-After`; a client that goes
away while held is taken out (its task is cancelled). The `llmstack_router_held_requests`
gauge counts what is held, per model: the signal that wakes a model scaled to zero.

Several router replicas and `--workers N` share nothing: each process holds its own clients'
requests, fair among them; see `router.routing.hold_queue` and DESIGN.md for how that adds up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from router.routing.engines import EngineRegistry
from router.routing.hold_queue import Held, HoldLimits, HoldQueue, QueueFull
from router.settings import QueueSettings
from router.shell.errors import BadRequest, HoldRefused, HoldTimedOut
from router.shell.metrics import RouterMetrics

RETRY_FULL_S = "1"  # a held request leaves as soon as an engine has room: worth a quick retry
RETRY_TIMED_OUT_S = "30"  # no engine came for the whole deadline: do not hammer
_UNBOUNDED = 1 << 30


class Holding:
    """One router process's held requests; see the module docstring."""

    def __init__(self, settings: QueueSettings, registry: EngineRegistry, metrics: RouterMetrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.queue = HoldQueue(HoldLimits(max_held=settings.max_held, max_wait_s=settings.max_wait_s,
                                          bands=len(settings.classes)))
        self.registry = registry
        self.metrics = metrics
        self.clock = clock
        self.bound = settings.max_in_flight_per_engine
        self.waiting = 0  # held or woken and not yet sent on, every model: the proxy's cheap check
        self._woken: dict[str, int] = {}
        self._band = {name: i for i, name in enumerate(settings.classes)}
        self.header = settings.priority_header.lower().encode("latin-1")
        self._kicked = False
        self._closed = False
        registry.add_listener(self.kick)
        for model in registry.served_models():
            metrics.held.child((model,))  # the series exists at 0 before anything is held

    # --- what the proxy asks ------------------------------------------------------------
    def busy(self, model: str) -> bool:
        """Requests of `model` are held or woken: a newcomer must queue behind them."""
        return bool(self.queue.held(model) or self._woken.get(model))

    def room(self, model: str) -> int:
        """Requests the model's engines in rotation can take now."""
        engines = self.registry.candidates(model)
        if not engines:
            return 0
        bound = self.bound
        if bound is None:
            return _UNBOUNDED
        return sum(bound - e.in_flight for e in engines if e.in_flight < bound)

    def band(self, headers: dict[bytes, bytes], key_class: str | None, keys_enabled: bool) -> int:
        """The request's priority band: its key's class (or the default), which the priority
        header may lower; without API keys the header may name any class."""
        own = self._band[key_class or self.settings.default_class]
        sent = headers.get(self.header)
        if sent is None:
            return own
        name = sent.decode("latin-1").strip().lower()
        band = self._band.get(name)
        if band is None:
            raise BadRequest(f"header '{self.settings.priority_header}' must be one of "
                             f"{', '.join(self.settings.classes)} (got {name!r})")
        return max(band, own) if keys_enabled else band

    async def wait(self, model: str, caller: str, band: int, again: Held | None = None) -> Held:
        """Hold until an engine of `model` has room; `again`: a woken request that found none
        after all goes back first in line, with its deadline. Raises `HoldRefused` /
        `HoldTimedOut`; cancelled when the client goes away."""
        if self._closed:
            raise HoldTimedOut("the router is shutting down", headers=(("retry-after", "1"),))
        item = self._admit(model, caller, band) if again is None else again
        if again is not None:
            self.queue.requeue(item)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        item.token = future
        self.waiting += 1
        self.metrics.held.inc((model,))
        if again is None:
            self.kick()
        outcome = "cancelled"
        try:
            try:
                async with asyncio.timeout(max(0.0, item.deadline - self.clock())):
                    await future
            except TimeoutError:
                if not _woken(future):
                    outcome = "timed_out"
                    raise HoldTimedOut(f"no engine of model '{model}' could take the request within "
                                       f"{self.settings.max_wait_s:g} s",
                                       headers=(("retry-after", RETRY_TIMED_OUT_S),)) from None
            outcome = "dispatched"
            return item
        except HoldRefused:
            outcome = "displaced"
            raise
        except HoldTimedOut:
            outcome = "timed_out" if outcome == "timed_out" else "closed"
            raise
        finally:
            self._left(item, future, outcome)

    def _admit(self, model: str, caller: str, band: int) -> Held:
        try:
            item, displaced = self.queue.admit(model, caller, band, self.clock())
        except QueueFull:
            self.metrics.hold_outcomes.inc((model, "refused"))
            raise HoldRefused(f"too many requests are waiting for model '{model}' "
                              f"({self.settings.max_held} held); retry later",
                              headers=(("retry-after", RETRY_FULL_S),)) from None
        token = displaced.token if displaced is not None else None
        if isinstance(token, asyncio.Future) and not token.done():
            token.set_exception(HoldRefused(
                f"too many requests are waiting for model '{model}'; this one gave way to a "
                "caller with fewer held or a higher priority; retry later",
                headers=(("retry-after", RETRY_FULL_S),)))
        return item

    def _left(self, item: Held, future: asyncio.Future[bool], outcome: str) -> None:
        self.waiting -= 1
        self.metrics.held.dec((item.model,))
        self.metrics.hold_outcomes.inc((item.model, outcome))
        if _woken(future):
            self._woken[item.model] -= 1
            if outcome != "dispatched":
                self.kick()  # it will not use the room it was woken for: pass it on
        else:
            self.queue.remove(item)
        item.token = None

    # --- waking held requests -----------------------------------------------------------
    def kick(self) -> None:
        """Schedule one dispatch pass (idempotent until it runs); no-op when nothing is held."""
        if self._kicked or not self.queue.total:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a registry change outside the loop: nobody can be waiting
        self._kicked = True
        loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._kicked = False
        for model in self.queue.models():
            room = self.room(model) - self._woken.get(model, 0)
            while room > 0 and (item := self.queue.pop(model)) is not None:
                future = item.token
                if isinstance(future, asyncio.Future) and not future.done():
                    future.set_result(True)
                    self._woken[model] = self._woken.get(model, 0) + 1
                    room -= 1

    def close(self) -> None:
        """The router is stopping: answer every held request 503 (they may retry elsewhere)."""
        self._closed = True
        for model in self.queue.models():
            while (item := self.queue.pop(model)) is not None:
                future = item.token
                if isinstance(future, asyncio.Future) and not future.done():
                    future.set_exception(HoldTimedOut("the router is shutting down; retry",
                                                      headers=(("retry-after", "1"),)))


def _woken(future: asyncio.Future[bool]) -> bool:
    """The dispatcher woke this request (as opposed to an error, a cancel or nothing yet)."""
    return future.done() and not future.cancelled() and future.exception() is None
