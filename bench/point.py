"""One QPS point on the event loop: a task per user sleeping until its slot, then a drain.

Users of the initial population are named after the run only (`<run>-u<i>`), so the same
user comes back at every QPS point of a sweep with the same conversation, as in the
original benchmark, and its context is warm if the engines kept it; users who join during a
point are new (`<run>-p<point>-u<i>`). Every request id is unique within the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.client import ChatClient, StreamResult
from bench.records import CANCELLED, STATUS_NO_RESPONSE, RequestRecord
from bench.schedule import Pacing, UserStart, initial_users, joining_users, next_launch
from bench.workload import Conversation, Workload


@dataclass(frozen=True, kw_only=True)
class Naming:
    """User and request ids of one point of one run."""

    run_id: str
    point: int
    users: int

    def user_id(self, start: UserStart) -> str:
        """Initial users keep their id across points; joiners are new at every point."""
        if start.index < self.users:
            return f"{self.run_id}-u{start.index}"
        return f"{self.run_id}-p{self.point}-u{start.index}"

    def request_id(self, user_id: str, round_index: int) -> str:
        """Unique within the run: a user may send the same round at two points."""
        return f"{user_id}-p{self.point}-r{round_index}"


def to_record(result: StreamResult, *, request_id: str, user_id: str, round_index: int, qps: float,
              t0: float) -> RequestRecord:
    """A request record from a raw stream result (times made relative to `t0`)."""
    times = result.token_times
    return RequestRecord(
        request_id=request_id, user_id=user_id, round=round_index, qps=qps,
        launch_s=result.launch - t0,
        ttft_s=times[0] - result.launch if times else None,
        e2e_s=result.done - result.launch if result.done is not None else None,
        itl_s=tuple(b - a for a, b in zip(times, times[1:], strict=False)),
        prompt_tokens=result.prompt_tokens, output_tokens=result.output_tokens,
        status=result.status, error=result.error,
    )


Users = list[tuple[UserStart, Conversation]]


def initial_conversations(workload: Workload, pacing: Pacing, naming: Naming) -> Users:
    """The initial population with its conversations, each already at its ramp round."""
    return [(s, workload.conversation(naming.user_id(s), s.first_round)) for s in initial_users(pacing)]


class PointRun:
    """Runs one point: `await PointRun(...).run(drain_s)` returns the wall time."""

    def __init__(self, client: ChatClient, workload: Workload, pacing: Pacing, *, naming: Naming,
                 stop: asyncio.Event, sink: Callable[[RequestRecord], None]) -> None:
        self._client, self._workload, self._pacing = client, workload, pacing
        self._naming, self._stop, self._sink = naming, stop, sink
        self._tasks: set[asyncio.Task[None]] = set()
        self._t0 = 0.0

    def _prepare(self) -> Users:
        """Every user of the point with its conversation, built before the clock starts so no
        text is generated on the loop while streams are timed (memory: one history per user)."""
        joining = joining_users(self._pacing)
        joiners = [(s, self._workload.conversation(self._naming.user_id(s))) for s in joining]
        return [*initial_conversations(self._workload, self._pacing, self._naming), *joiners]

    async def run(self, drain_s: float) -> float:
        """Launch for the window, wait up to `drain_s` for answers, cancel the rest."""
        users = self._prepare()
        self._t0 = time.perf_counter()
        for start, conv in users:
            self._spawn(start, conv)
        stopped = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({stopped}, timeout=self._pacing.duration_s)
            deadline = time.perf_counter() + drain_s
            while self._tasks and not self._stop.is_set() and (left := deadline - time.perf_counter()) > 0:
                await asyncio.wait({*self._tasks, stopped}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*self._tasks, stopped):
                task.cancel()
            await asyncio.gather(*self._tasks, stopped, return_exceptions=True)
        return time.perf_counter() - self._t0

    def _spawn(self, start: UserStart, conv: Conversation) -> None:
        task = asyncio.create_task(self._user(start, conv))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sleep_until(self, at: float) -> None:
        delay = self._t0 + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _user(self, start: UserStart, conv: Conversation) -> None:
        due = start.first_launch
        for round_index in range(start.first_round, self._pacing.rounds):
            if due >= self._pacing.duration_s:
                return
            await self._sleep_until(due)
            result = await self._send(conv, round_index)
            conv.answer(result.text or self._workload.synthetic_answer(conv.user_id, round_index))
            done = result.done if result.done is not None else time.perf_counter()
            due = next_launch(self._pacing, result.launch - self._t0, done - self._t0)

    async def _send(self, conv: Conversation, round_index: int) -> StreamResult:
        request_id = self._naming.request_id(conv.user_id, round_index)
        messages = conv.ask(round_index)
        launch = time.perf_counter()
        meta: dict[str, Any] = {"request_id": request_id, "user_id": conv.user_id, "round_index": round_index,
                "qps": self._pacing.qps, "t0": self._t0}
        try:
            result = await self._client.stream_chat(
                messages, max_tokens=conv.max_tokens(round_index), user_id=conv.user_id, request_id=request_id
            )
        except asyncio.CancelledError:
            cut = StreamResult(launch=launch, error=CANCELLED, status=STATUS_NO_RESPONSE)
            self._sink(to_record(cut, **meta))
            raise
        self._sink(to_record(result, **meta))
        return result
