"""The I/O shell that runs a whole benchmark: the Python API the demo and the CLI use.

`run_benchmark(config)` probes the endpoint (models, metrics), optionally warms the engines
up, then runs each QPS point in order (`bench.point`), scraping the engines'
prefix-cache counters before and after each, and returns every request record with each
point's statistics. Setting `stop` (Ctrl-C) cancels what is in flight and returns what was
measured so far.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from bench import metrics_scrape
from bench.client import ChatClient, new_session, served_models
from bench.config import BenchConfig
from bench.errors import ConfigError, EndpointError
from bench.point import Naming, PointRun
from bench.records import RequestRecord
from bench.schedule import Pacing, initial_users
from bench.sharegpt import read_sharegpt
from bench.stats import PointStats, summarize
from bench.warmup import WarmupResult, warm_up
from bench.workload import Workload, WorkloadSpec


class Progress(Protocol):
    """Hooks a live display implements; all are called on the event loop."""

    def warmup_started(self, users: int) -> None: ...
    def warmup_finished(self, result: WarmupResult) -> None: ...
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
    metrics URLs that exposed prefix-cache counters, the warm-up (None when off), and
    whether Ctrl-C cut it short."""

    config: BenchConfig
    model: str
    points: tuple[PointResult, ...]
    metrics_urls: tuple[str, ...]
    interrupted: bool
    warmup: WarmupResult | None = None


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


def pacing_for(config: BenchConfig, point: int) -> Pacing:
    """The schedule of QPS point `point`."""
    return Pacing(users=config.users, rounds=config.rounds, qps=config.qps[point],
                  duration_s=config.duration_for(point))


async def run_point(
    client: ChatClient, workload: Workload, pacing: Pacing, *, naming: Naming, drain_s: float,
    stop: asyncio.Event, progress: Progress | None = None,
) -> tuple[list[RequestRecord], float]:
    """Run one QPS point; return its records (in completion order) and its wall time."""
    records: list[RequestRecord] = []

    def sink(record: RequestRecord) -> None:
        records.append(record)
        if progress is not None:
            progress.request_done(record)

    elapsed = await PointRun(client, workload, pacing, naming=naming, stop=stop, sink=sink).run(drain_s)
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
    warmup = None
    async with new_session(config.request_timeout_s) as session:
        model = await resolve_model(session, config)
        urls = await resolve_metrics_urls(session, config)
        client = ChatClient(session, config.root_url, model, config.api_key, config.extra_body)
        if config.warmup:
            warmup = await _warm_up(client, workload, config, run_id, stop, progress)
        for index in range(len(config.qps)):
            if stop.is_set():
                break
            naming = Naming(run_id=run_id, point=index, users=config.users)
            points.append(await _point(session, client, workload, config, index, urls, naming=naming,
                                       stop=stop, progress=progress))
    return BenchResult(config=config, model=model, points=tuple(points), metrics_urls=urls,
                       interrupted=stop.is_set(), warmup=warmup)


async def _warm_up(client: ChatClient, workload: Workload, config: BenchConfig, run_id: str,
                   stop: asyncio.Event, progress: Progress | None) -> WarmupResult:
    pacing = pacing_for(config, 0)
    if progress is not None:
        progress.warmup_started(sum(s.first_round > 0 for s in initial_users(pacing)))
    result = await warm_up(client, workload, pacing, Naming(run_id=run_id, point=0, users=config.users),
                           concurrency=config.warmup_concurrency, stop=stop)
    if progress is not None:
        progress.warmup_finished(result)
    return result


async def _point(session: aiohttp.ClientSession, client: ChatClient, workload: Workload, config: BenchConfig,
                 index: int, urls: Sequence[str], *, naming: Naming, stop: asyncio.Event,
                 progress: Progress | None) -> PointResult:
    pacing = pacing_for(config, index)
    if progress is not None:
        progress.point_started(pacing.qps, round(pacing.qps * pacing.duration_s), pacing.duration_s)
    before = await metrics_scrape.scrape(session, urls) if urls else {}
    records, elapsed = await run_point(client, workload, pacing, naming=naming, drain_s=config.drain_s,
                                       stop=stop, progress=progress)
    after = await metrics_scrape.scrape(session, urls) if urls else {}
    hit_rate = metrics_scrape.run_delta(before, after).hit_rate if urls else None
    stats = summarize(records, qps=pacing.qps, elapsed_s=elapsed, cache_hit_rate=hit_rate)
    if progress is not None:
        progress.point_finished(stats)
    return PointResult(stats=stats, records=tuple(records))
