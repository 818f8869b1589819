"""The benchmark end to end: the engines once, every phase of each mode, the memory figure, and
the lines to print. Bounded by `plan.deadline_s`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.kv_events import figures as fig
from benchmarks.kv_events import phases
from benchmarks.kv_events.client import Record
from benchmarks.kv_events.cluster import Engines, Routers, knows_scoring
from benchmarks.kv_events.figures import Figure, fmt, verdict
from benchmarks.kv_events.plan import (
    ACCURACY_MAX,
    CAPACITY_MIN_RATIO,
    COLD_JOIN_RATIO,
    COLD_JOIN_READY_S,
    DROP_POINTS,
    MEMORY_MAX_MB,
    WIPED_BELIEFS_MAX,
    KvPlan,
)
from local.procs import BenchError, Processes


@dataclass
class ModeRun:
    mode: str
    base: phases.Base
    oracle: phases.Capacity
    doubled: phases.Capacity
    drop: phases.Drop


@dataclass
class Report:
    plan: KvPlan
    runs: list[ModeRun]
    skipped: list[str] = field(default_factory=list)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)

    def figures(self) -> list[Figure]:
        out: list[Figure] = []
        oracle = max((r.oracle.hit_rate for r in self.runs), default=math.nan)
        by_mode = {r.mode: r for r in self.runs}
        for run in self.runs:
            out += _mode_figures(self.plan, run, oracle, by_mode.get("approximate"))
        for mode, m in self.memory.items():
            idle = by_mode[mode].base.router_idle_mb if mode in by_mode else math.nan
            total = idle + m["rss_mb"] - m["baseline_mb"]
            out.append(Figure("memory", mode, {
                "prompts": str(int(m["prompts"])), "structures_mb": fmt(m["rss_mb"] - m["baseline_mb"], 1),
                "process_rss_mb": fmt(m["rss_mb"], 1), "router_idle_mb": fmt(idle, 1),
                "router_estimate_mb": fmt(total, 1), "cpu_us_per_prompt": fmt(m["cpu_us_per_prompt"], 1)},
                f"<={MEMORY_MAX_MB:g}MB",
                verdict(mode, None if math.isnan(total) else total <= MEMORY_MAX_MB)))
        return out

    def lines(self) -> list[str]:
        return [f.line() for f in self.figures()] + [f"SKIPPED {s}" for s in self.skipped]

    @property
    def targets_met(self) -> bool:
        return not self.skipped and all(f.verdict != fig.FAIL for f in self.figures()) \
            and any(f.verdict == fig.PASS for f in self.figures())


def _mode_figures(plan: KvPlan, run: ModeRun, oracle: float, approx: ModeRun | None) -> list[Figure]:
    mode, base = run.mode, run.base
    out = [_accuracy(mode, base), _restart(plan, mode, base), _capacity(mode, run, oracle),
           _cold_join(mode, base), _drop(mode, run)]
    cpu = _cpu(run)
    ref = _cpu(approx) if approx is not None else math.nan
    out.append(Figure("router_cpu", mode, {"ms_per_request": fmt(cpu * 1e3, 3),
                                           "vs_approximate": fmt(cpu / ref if ref else math.nan, 2),
                                           "requests": str(run.oracle.requests + run.doubled.requests)},
                      "report", fig.INFO))
    return out


def _cpu(run: ModeRun) -> float:
    """CPU seconds per request over both capacity runs (idle rate taken out)."""
    return (run.oracle.cpu_s_per_request + run.doubled.cpu_s_per_request) / 2


def _accuracy(mode: str, base: phases.Base) -> Figure:
    delivered = sum(base.delivered.values())
    if base.predicted is None:
        return Figure("accuracy", mode, {"predicted": "n/a", "delivered": fmt(delivered, 0)},
                      f"<={ACCURACY_MAX:g}", fig.NA)
    predicted = sum(base.predicted.values())
    error = fig.relative_error(predicted, delivered)
    return Figure("accuracy", mode, {
        "rel_error": fmt(error), "per_engine": fmt(fig.per_engine_error(base.predicted, base.delivered)),
        "per_request": fmt(fig.per_request_error(base.warm)), "predicted": fmt(predicted, 0),
        "attributed": fmt(fig.attributed(base.warm), 0),
        "delivered": fmt(delivered, 0), "requests": str(len(base.warm))},
        f"<={ACCURACY_MAX:g}", verdict(mode, error <= ACCURACY_MAX))


def _restart(plan: KvPlan, mode: str, base: phases.Base) -> Figure:
    start, end = base.restart_at, base.restart_at + plan.restart_window_s
    window = [r for r in base.window if start <= r.launched < end]
    ttfts = [r.ttft_s for r in window if r.ttft_s is not None]
    measured = any(r.predicted for r in base.warm)
    wrong = fig.believed_warm(window, base.wiped, start, end, base.slack_tokens) if measured else None
    excess = fig.excess_tokens(window, base.wiped, start, end) if measured else None
    return Figure("restart", mode, {
        "hit_rate": fmt(fig.hit_rate(window)), "ttft_p99_s": fmt(fig.p99(ttfts), 3),
        "requests": str(len(window)), "to_wiped": str(sum(r.engine == base.wiped for r in window)),
        "believed_warm": fmt(wrong), "excess_tokens": fmt(excess, 0),
        "failed": str(sum(not r.ok for r in window))},
        f"believed_warm<={WIPED_BELIEFS_MAX}",
        verdict(mode, None if wrong is None else wrong <= WIPED_BELIEFS_MAX))


def _capacity(mode: str, run: ModeRun, oracle: float) -> Figure:
    ratio = run.doubled.hit_rate / oracle if oracle else math.nan
    return Figure("capacity_2x", mode, {
        "hit_rate": fmt(run.doubled.hit_rate), "oracle_hit_rate": fmt(oracle),
        "told_truth_hit_rate": fmt(run.oracle.hit_rate), "ratio": fmt(ratio, 3),
        "failed": str(run.doubled.failed + run.oracle.failed)},
        f">={CAPACITY_MIN_RATIO:g}xoracle", verdict(mode, ratio >= CAPACITY_MIN_RATIO))


def _cold_join(mode: str, base: phases.Base) -> Figure:
    cold, warm = fig.hit_rate(base.joined), fig.hit_rate(base.warm_peer)
    cold_found, warm_found = fig.found_share(base.joined), fig.found_share(base.warm_peer)
    ratio = cold_found / warm_found if warm_found else math.nan
    ok = ratio >= COLD_JOIN_RATIO and base.join_ready_s <= COLD_JOIN_READY_S
    return Figure("cold_join", mode, {
        "ready_s": fmt(base.join_ready_s, 2), "cold_hit_rate": fmt(cold), "warm_hit_rate": fmt(warm),
        "cold_found": fmt(cold_found), "warm_found": fmt(warm_found),
        "ratio": fmt(ratio, 3), "requests": f"{len(base.joined)}+{len(base.warm_peer)}"},
        f">={COLD_JOIN_RATIO:g}xwarm,ready<={COLD_JOIN_READY_S:g}s", verdict(mode, ok))


def _drop(mode: str, run: ModeRun) -> Figure:
    d = run.drop
    points = d.hit_rate - run.oracle.hit_rate
    fallback = d.gaps.get("replayed", 0.0) + d.gaps.get("lost", 0.0)
    states = ",".join(f"{k}:{v}" for k, v in sorted(d.states.items())) or "none"
    counted = mode != fig.EVENTS or fallback > 0
    ok = d.router_alive and not d.failed and abs(points) <= DROP_POINTS and counted
    return Figure("drop_reorder", mode, {
        "hit_rate": fmt(d.hit_rate), "clean_hit_rate": fmt(run.oracle.hit_rate),
        "points": fmt(points * 100, 2), "gaps_replayed": fmt(d.gaps.get("replayed"), 0),
        "gaps_lost": fmt(d.gaps.get("lost"), 0), "feed_states_seen": states,
        "fallbacks": ",".join(f"{k}:{v:g}" for k, v in sorted(d.fallbacks.items())) or "none",
        "router_alive": "yes" if d.router_alive else "no", "failed": str(d.failed)},
        f"|points|<={DROP_POINTS * 100:g},no_crash,fallback_counted", verdict(mode, ok))


async def _mode(ctx: phases.Ctx, mode: str) -> ModeRun:
    ctx.say(f"# {mode}: base (accuracy, restart, cold join)")
    base = await phases.base(ctx, mode)
    ctx.say(f"# {mode}: capacity told right, told 2x")
    oracle = await phases.capacity(ctx, mode, 1.0)
    doubled = await phases.capacity(ctx, mode, 2.0)
    ctx.say(f"# {mode}: dropped and reordered events")
    drop = await phases.drop(ctx, mode)
    return ModeRun(mode=mode, base=base, oracle=oracle, doubled=doubled, drop=drop)


def _memory(plan: KvPlan, mode: str) -> dict[str, float]:
    argv = [sys.executable, "-m", "benchmarks.kv_events.memory", "--prompts", str(plan.memory_prompts),
            "--engines", str(plan.memory_engines), "--mode", mode]
    done = subprocess.run(argv,
                          capture_output=True, text=True, timeout=plan.deadline_s)
    if done.returncode:
        raise BenchError(f"memory measure ({mode}) failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def _run(plan: KvPlan, modes: Sequence[str], workdir: Path, procs: Processes,
               say: Callable[[str], object]) -> Report:
    scoring = knows_scoring()
    runnable = [m for m in modes if scoring or m == "approximate"]
    skipped = [f"{m}: this router has no kv_events.scoring (issue 19's event scoring not merged)"
               for m in modes if m not in runnable]
    engines = Engines(plan)
    await engines.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=60)) as session:
            routers = Routers(procs, workdir, plan)
            ctx = phases.Ctx(plan=plan, session=session, engines=engines, routers=routers, scoring=scoring,
                             say=say)
            try:
                runs = [await _mode(ctx, mode) for mode in runnable]
            finally:
                write_records(ctx.kept, workdir / "records.jsonl")
    finally:
        engines.close()
    report = Report(plan=plan, runs=runs, skipped=skipped)
    for mode in runnable:
        say(f"# {mode}: memory after {plan.memory_prompts} distinct prompts")
        report.memory[mode] = await asyncio.to_thread(_memory, plan, mode)
    return report


def write_records(kept: Sequence[tuple[str, Record]], path: Path) -> None:
    """Every request of the run, one JSON object a line (for diagnosis)."""
    with path.open("w") as out:
        for mode, record in kept:
            out.write(json.dumps({"mode": mode, **dataclasses.asdict(record)}) + "\n")


def run_benchmark(plan: KvPlan, modes: Sequence[str], workdir: Path, procs: Processes,
                  say: Callable[[str], object] = print) -> Report:
    """Every mode's phases, then the memory figure; raises `BenchError` when the harness cannot go on."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(asyncio.wait_for(_run(plan, modes, workdir, procs, say), plan.deadline_s))
    except TimeoutError:
        raise BenchError(f"the benchmark did not finish within {plan.deadline_s:.0f} s") from None
