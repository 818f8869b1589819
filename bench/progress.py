"""Live progress of a run on the terminal (rich): one bar per QPS point with the requests
finished against those the schedule offers, errors, and the running TTFT median."""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bench.records import RequestRecord
from bench.stats import PointStats
from bench.warmup import WarmupResult

_RECENT = 200


class LiveProgress:
    """Implements the runner's `Progress` hooks with a rich progress bar."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]QPS {task.fields[qps]:g}"), BarColumn(),
            TextColumn("{task.completed}/{task.total} req"),
            TextColumn("err {task.fields[errors]}"),
            TextColumn("TTFT p50 {task.fields[ttft]}"),
            TimeElapsedColumn(), console=console or Console(stderr=True), transient=False,
        )
        self._task: TaskID | None = None
        self._errors = 0
        self._recent: deque[float] = deque(maxlen=_RECENT)

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def warmup_started(self, users: int) -> None:
        """Say that the unmeasured warm-up is running for `users` users (no per-request hook)."""
        self._progress.console.print(f"warming up: {users} users resend their previous round",
                                     highlight=False)

    def warmup_finished(self, result: WarmupResult) -> None:
        """Report the warm-up's size, errors and time."""
        self._progress.console.print(
            f"warm-up done: {result.requests} requests, {result.errors} errors, {result.elapsed_s:.1f} s",
            highlight=False,
        )

    def point_started(self, qps: float, expected_requests: int, duration_s: float) -> None:
        """A new bar for the point."""
        self._errors = 0
        self._recent.clear()
        self._task = self._progress.add_task("point", total=max(1, expected_requests), qps=qps,
                                             errors=0, ttft="-")

    def request_done(self, record: RequestRecord) -> None:
        """Advance the bar; refresh the error count and the TTFT median of recent requests."""
        if self._task is None:
            return
        if record.ok and record.ttft_s is not None:
            self._recent.append(record.ttft_s)
        elif not record.ok:
            self._errors += 1
        ttft = f"{statistics.median(self._recent) * 1000:.0f} ms" if self._recent else "-"
        self._progress.update(self._task, advance=1, errors=self._errors, ttft=ttft)

    def point_finished(self, stats: PointStats) -> None:
        """Close the point's bar at what it really launched."""
        if self._task is not None:
            self._progress.update(self._task, total=stats.launched, completed=stats.launched)
        self._task = None


class LogProgress:
    """Plain lines for logs (a Kubernetes Job, a pipe): one per warm-up and per QPS point."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo

    def warmup_started(self, users: int) -> None:
        """Announce the warm-up."""
        self._echo(f"warm-up: {users} users resend their previous round")

    def warmup_finished(self, result: WarmupResult) -> None:
        """Sum the warm-up up."""
        self._echo(f"warm-up done: {result.requests} requests, {result.errors} errors, "
                   f"{result.elapsed_s:.1f} s")

    def point_started(self, qps: float, expected_requests: int, duration_s: float) -> None:
        """Announce a point."""
        self._echo(f"QPS {qps:g}: ~{expected_requests} requests over {duration_s:g} s")

    def request_done(self, record: RequestRecord) -> None:
        """Nothing per request in logs."""

    def point_finished(self, stats: PointStats) -> None:
        """One line with the point's headline figures."""
        ttft = "-" if stats.ttft is None else f"{stats.ttft.p50 * 1000:.0f}/{stats.ttft.p99 * 1000:.0f} ms"
        hit = "-" if stats.cache_hit_rate is None else f"{stats.cache_hit_rate:.1%}"
        self._echo(f"QPS {stats.qps:g} done: {stats.finished} finished, {stats.errors} errors, "
                   f"TTFT p50/p99 {ttft}, cache hit {hit}")
