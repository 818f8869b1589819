"""The requests' deadlines, enforced by one task per router process.

Each attempt to an engine is registered with the time it must next hear from the engine by
(`Watch.due`: the first byte, then each next chunk, never past the whole answer's deadline);
the proxy moves `due` forward as chunks arrive, which costs it one float store per chunk
instead of a timer per read. Every `tick_s` the watchdog cancels the attempts whose `due` has
passed, marking what was missed; the proxy turns that cancellation into an `UpstreamTimeout`
(`Watch.missed`) and retries, migrates or answers 504. While the proxy writes to the client,
`due` is infinite: a slow client is not the engine's fault.

Precision is `tick_s` (0.1 s), ample for deadlines of seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

INF: Final = float("inf")
FIRST_BYTE: Final = "first_byte"
INTER_CHUNK: Final = "inter_chunk"
WHOLE: Final = "whole"


class Watch:
    """One attempt's deadline."""

    __slots__ = ("task", "due", "whole", "phase", "missed")

    def __init__(self, task: asyncio.Task[object], due: float, whole: float) -> None:
        self.task = task
        self.due = due if due < whole else whole
        self.whole = whole
        self.phase = FIRST_BYTE  # which deadline `due` is, unless it is `whole`
        self.missed: str | None = None

    def heard(self, now: float, inter_chunk_s: float) -> None:
        """The engine sent a chunk at `now`: the next one is due within `inter_chunk_s`."""
        due = now + inter_chunk_s
        self.due = due if due < self.whole else self.whole
        self.phase = INTER_CHUNK


class Watchdog:
    def __init__(self, *, tick_s: float = 0.1, clock: Callable[[], float] = time.perf_counter) -> None:
        self.tick_s = tick_s
        self.clock = clock
        self._open: set[Watch] = set()

    def watch(self, due_in_s: float, whole: float) -> Watch:
        """Watch the running task's attempt: due within `due_in_s`, never after `whole` (clock time)."""
        task = asyncio.current_task()
        assert task is not None
        watch = Watch(task, self.clock() + due_in_s, whole)
        self._open.add(watch)
        return watch

    def unwatch(self, watch: Watch) -> None:
        self._open.discard(watch)

    def expire(self) -> int:
        """Cancel the attempts past their deadline; returns how many."""
        now = self.clock()
        late = [w for w in self._open if w.due <= now]
        for watch in late:
            self._open.discard(watch)
            watch.missed = WHOLE if watch.due >= watch.whole else watch.phase
            watch.task.cancel()
        return len(late)

    async def run(self) -> None:
        """Expire forever, every `tick_s` (cancelled by the app)."""
        while True:
            await asyncio.sleep(self.tick_s)
            if self._open:
                self.expire()
