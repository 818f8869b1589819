"""Supervised background tasks: discovery, health checks and metric scraping run forever; one
that dies is logged, counted and restarted after a backoff, and the app's health shows it.

`Supervisor.spawn(name, job)` runs `job()` (a coroutine function that should never return)
as an asyncio task; when it raises (or returns), the failure is logged with its traceback,
`on_restart(name)` is called (the app counts it in a metric), the task is marked down and
`job()` starts again after `backoff(failures)` seconds. `down()` names the tasks waiting to
restart (`critical_down()` those spawned `critical`: the ones the router's readiness needs);
`restarts` counts restarts per task. `cancel(name)` ends one task (an engine's KV-event
subscription when discovery removes the engine); `stop()` cancels everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Job = Callable[[], Coroutine[Any, Any, None]]


def backoff_s(failures: int, *, first: float = 0.5, cap: float = 30.0) -> float:
    """Seconds before restart number `failures` (1, 2, ...): doubling from `first`, capped."""
    return min(cap, first * 2 ** max(0, failures - 1))


class Supervisor:
    """Owns the app's background tasks; see the module docstring."""

    def __init__(self, on_restart: Callable[[str], None],
                 backoff: Callable[[int], float] = backoff_s) -> None:
        self._on_restart = on_restart
        self._backoff = backoff
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._down: set[str] = set()
        self._optional: set[str] = set()
        self.restarts: dict[str, int] = {}

    def spawn(self, name: str, job: Job, *, critical: bool = True) -> None:
        """Run `job` under supervision as task `name` (`critical`: the router is not ready while
        it waits for a restart)."""
        self.restarts.setdefault(name, 0)
        if not critical:
            self._optional.add(name)
        self._tasks[name] = asyncio.get_running_loop().create_task(self._keep(name, job), name=name)

    def cancel(self, name: str) -> asyncio.Task[None] | None:
        """Stop task `name` and forget it (its restart count too); returns the cancelled task."""
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
        self._down.discard(name)
        self._optional.discard(name)
        self.restarts.pop(name, None)
        return task

    async def _keep(self, name: str, job: Job) -> None:
        failures = 0
        while True:
            try:
                await job()
                raise RuntimeError(f"background task {name!r} returned; it must run until cancelled")
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.exception("background task %s died (failure %d); restarting", name, failures)
            self._down.add(name)
            self.restarts[name] += 1
            self._on_restart(name)
            await asyncio.sleep(self._backoff(failures))
            self._down.discard(name)

    def down(self) -> list[str]:
        """Tasks that died and wait for their restart, sorted."""
        return sorted(self._down)

    def critical_down(self) -> list[str]:
        """The critical tasks among `down()`."""
        return sorted(self._down - self._optional)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    async def stop(self) -> None:
        """Cancel every task and wait for them to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._down.clear()
        self._optional.clear()
