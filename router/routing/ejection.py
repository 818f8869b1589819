"""Passive ejection (outlier detection), the pure part: an engine that keeps failing the
requests sent to it leaves rotation even while its `/health` still answers — a hung engine
whose HTTP server is alive, the case active health checks cannot see (issue 18, defect 5).

An engine is ejected after `failures` failed requests (a missed deadline, a broken or refused
exchange) within `window_s`; it stays out at least `min_out_s`, then the active health checks
bring it back (one good check). Ejection never takes a model below half of its engines
(`max_out_fraction`, as Envoy's outlier detection caps `max_ejection_percent`): when the
failures are everywhere the cause is load or the client's requests, not one engine.

State is per router process (each worker ejects on what it sees); nothing is shared.
"""

from __future__ import annotations

from collections import deque

from router.settings import EjectionSettings


class Ejector:
    """Failure history per engine and the ejection decisions it leads to."""

    def __init__(self, rule: EjectionSettings) -> None:
        self.rule = rule
        self._failures: dict[str, deque[float]] = {}
        self._out_until: dict[str, float] = {}

    def record(self, engine: str, now: float, *, members: int, out: int) -> bool:
        """Count one failure of `engine` at `now`; True when it is to leave rotation now.
        `members` is how many engines serve its model(s), `out` how many of them are out of
        rotation already."""
        rule = self.rule
        times = self._failures.setdefault(engine, deque())
        times.append(now)
        while times and times[0] < now - rule.window_s:
            times.popleft()
        if len(times) < rule.failures:
            return False
        if out + 1 > members * rule.max_out_fraction:
            return False  # the cap: failures everywhere are not one engine's fault
        times.clear()
        self._out_until[engine] = now + rule.min_out_s
        return True

    def may_return(self, engine: str, now: float) -> bool:
        """Whether health checks may bring `engine` back into rotation."""
        until = self._out_until.get(engine)
        if until is None:
            return True
        if now < until:
            return False
        del self._out_until[engine]
        return True

    def forget(self, engine: str) -> None:
        """The engine left the set (discovery)."""
        self._failures.pop(engine, None)
        self._out_until.pop(engine, None)
