"""The I/O shell that drives one QPS point and a whole sweep (the Python API the demo uses).

`run_benchmark(config)` probes the endpoint, then runs each QPS point: it places the
schedule's users on the event loop (one task per user), streams their rounds through one
`ChatClient`, scrapes the engines' prefix-cache counters before and after, and returns every
request record with the point's statistics. Setting `stop` (Ctrl-C) cancels what is in
flight and returns what was measured so far.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from benchmarks.qa import metrics_scrape
from benchmarks.qa.client import ChatClient, StreamResult, new_session, served_models
from benchmarks.qa.config import BenchConfig
from benchmarks.qa.errors import ConfigError, EndpointError
from benchmarks.qa.records import CANCELLED, STATUS_NO_RESPONSE, RequestRecord
from benchmarks.qa.schedule import Pacing, UserStart, initial_users, joining_users, next_launch
from benchmarks.qa.sharegpt import read_sharegpt
from benchmarks.qa.stats import PointStats, summarize
from benchmarks.qa.workload import Conversation, Workload, WorkloadSpec


class Progress(Protocol):
    """Hooks a live display implements; all are called on the event loop."""

    def point_started(self, qps: float, expected_requests: int, duration_s: float) -> None: ...
    def request_done(self, record: RequestRecord) -> None: ...
    def point_finished(self, stats: PointStats) -> None: ...


@dataclass(frozen=True, kw_only=True)
class PointResult:
    """One QPS point: its statistics and every request it launched."""

    stats: PointStats
    records: tuple[RequestRecord, ...]


@dataclass(frozen=True, kw_only=True)
class BenchResult:
    """A whole run: the config, the model it resolved, one result per QPS point run, the
    metrics URLs that exposed prefix-cache counters, and whether Ctrl-C cut it short."""

    config: BenchConfig
    model: str
    points: tuple[PointResult, ...]
    metrics_urls: tuple[str, ...]
    interrupted: bool


def to_record(result: StreamResult, *, request_id: str, user_id: str, round_index: int, qps: float,
              t0: float) -> RequestRecord:
    """A request record from a raw stream result (times made relative)."""
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


class _PointRun:
    """One QPS point on the event loop: a task per user (sleeping until its slot), a drain."""

    def __init__(self, client: ChatClient, workload: Workload, pacing: Pacing, *, tag: str,
                 stop: asyncio.Event, sink: Callable[[RequestRecord], None]) -> None:
        self._client, self._workload, self._pacing = client, workload, pacing
        self._tag, self._stop, self._sink = tag, stop, sink
        self._tasks: set[asyncio.Task[None]] = set()
        self._t0 = 0.0

    def _prepare(self) -> list[tuple[UserStart, Conversation]]:
        """Every user of the point with its conversation, built before the clock starts so no
        text is generated on the loop while streams are timed (memory: one history per user)."""
        starts = [*initial_users(self._pacing), *joining_users(self._pacing)]
        return [(s, self._workload.conversation(f"{self._tag}u{s.index}", s.first_round)) for s in starts]

    async def run(self, drain_s: float) -> float:
        """Run the point; return its wall time in seconds."""
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
        request_id = f"{conv.user_id}r{round_index}"
        messages = conv.ask(round_index)
        launch = time.perf_counter()
        meta = {"request_id": request_id, "user_id": conv.user_id, "round_index": round_index,
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


async def resolve_model(session: aiohttp.ClientSession, config: BenchConfig) -> str:
    """The model to ask for: `--model` if the endpoint serves it, else the first it serves."""
    served = await served_models(session, config.root_url, config.api_key)
    if config.model:
        if config.model not in served:
            raise ConfigError(
                f"--model: {config.model!r} is not served by {config.root_url} (served: {', '.join(served)})"
            )
        return config.model
    if not served:
        raise EndpointError(f"--base-url: {config.root_url} serves no model")
    return served[0]


async def resolve_metrics_urls(session: aiohttp.ClientSession, config: BenchConfig) -> tuple[str, ...]:
    """The metrics URLs that expose vLLM prefix-cache counters now."""
    given = config.metrics_urls if config.metrics_urls is not None else (config.root_url,)
    candidates = tuple(metrics_scrape.metrics_url(url) for url in given)
    answered = await metrics_scrape.scrape(session, candidates)
    return tuple(url for url in candidates if url in answered)


def workload_for(config: BenchConfig) -> Workload:
    """The workload a config describes (reads the ShareGPT file when one is given)."""
    spec = WorkloadSpec(
        system_prompt_tokens=config.system_prompt_tokens, history_tokens=config.history_tokens,
        question_tokens=config.question_tokens, answer_tokens=config.answer_tokens,
        rounds=config.rounds, seed=config.seed,
    )
    dialogs = read_sharegpt(config.sharegpt, config.rounds) if config.sharegpt else ()
    return Workload(spec, dialogs)


async def run_point(
    client: ChatClient, workload: Workload, pacing: Pacing, *, tag: str, drain_s: float,
    stop: asyncio.Event, progress: Progress | None = None,
) -> tuple[list[RequestRecord], float]:
    """Run one QPS point; return its records (in completion order) and its wall time."""
    records: list[RequestRecord] = []

    def sink(record: RequestRecord) -> None:
        records.append(record)
        if progress is not None:
            progress.request_done(record)

    elapsed = await _PointRun(client, workload, pacing, tag=tag, stop=stop, sink=sink).run(drain_s)
    return records, elapsed


async def run_benchmark(config: BenchConfig, *, stop: asyncio.Event | None = None,
                        progress: Progress | None = None) -> BenchResult:
    """Run every QPS point of `config` in order against its endpoint.

    Raises ConfigError / EndpointError / InputFileError before any load is sent when the
    endpoint is unreachable, does not serve `config.model`, or an input file is bad."""
    stop = stop or asyncio.Event()
    workload = workload_for(config)
    run_id = uuid.uuid4().hex[:8]
    points: list[PointResult] = []
    async with new_session(config.request_timeout_s) as session:
        model = await resolve_model(session, config)
        urls = await resolve_metrics_urls(session, config)
        client = ChatClient(session, config.root_url, model, config.api_key, config.extra_body)
        for index, qps in enumerate(config.qps):
            if stop.is_set():
                break
            points.append(await _point(session, client, workload, config, qps, urls,
                                       tag=f"{run_id}-p{index}-", stop=stop, progress=progress))
    return BenchResult(config=config, model=model, points=tuple(points), metrics_urls=urls,
                       interrupted=stop.is_set())


async def _point(session: aiohttp.ClientSession, client: ChatClient, workload: Workload, config: BenchConfig,
                 qps: float, urls: Sequence[str], *, tag: str, stop: asyncio.Event,
                 progress: Progress | None) -> PointResult:
    pacing = Pacing(users=config.users, rounds=config.rounds, qps=qps, duration_s=config.duration_s)
    if progress is not None:
        progress.point_started(qps, round(qps * config.duration_s), config.duration_s)
    before = await metrics_scrape.scrape(session, urls) if urls else {}
    records, elapsed = await run_point(client, workload, pacing, tag=tag, drain_s=config.drain_s,
                                       stop=stop, progress=progress)
    after = await metrics_scrape.scrape(session, urls) if urls else {}
    hit_rate = metrics_scrape.run_delta(before, after).hit_rate if urls else None
    stats = summarize(records, qps=qps, elapsed_s=elapsed, cache_hit_rate=hit_rate)
    if progress is not None:
        progress.point_finished(stats)
    return PointResult(stats=stats, records=tuple(records))
