"""The chaos run end to end: start the cluster, run the scenarios under the load, judge every
request, check the twins by replay, and return the lines to print. Bounded by `deadline_s`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.chaos import plan as names
from benchmarks.chaos.cluster import Engines, Routers, TargetList
from benchmarks.chaos.load import TOTAL_MARGIN_S, Load, Record, send
from benchmarks.chaos.plan import ChaosPlan, scenarios
from benchmarks.chaos.scenarios import STEPS, Chaos, prepare_scale_from_zero, scale_from_zero
from benchmarks.chaos.tally import OK, Tally, Verdict, classify, total
from local.autoscale.wake import FIXED_LAGS_S
from local.procs import Processes


class ChaosError(RuntimeError):
    """The harness could not run (a process did not start, a wait ran out)."""


@dataclass
class Report:
    tallies: list[Tally]
    twin_check: tuple[int, int]
    """(replayed, identical to their computed twins)."""
    from_zero_within_bound: bool
    records: list[tuple[Record, Verdict]] = field(default_factory=list)

    def lines(self) -> list[str]:
        replayed, identical = self.twin_check
        return [t.line() for t in self.tallies] + [total(self.tallies).line(),
                                                   f"TWIN_CHECK replayed {replayed} identical {identical}"]

    @property
    def targets_met(self) -> bool:
        """The issue's targets: no failure, truncation or mismatch anywhere; the first request
        from zero within the engine's load time + 2 s; the computed twins confirmed."""
        t = total(self.tallies)
        return not (t.failed or t.truncated or t.mismatched) and self.from_zero_within_bound \
            and self.twin_check[0] == self.twin_check[1]


async def _migrations(c: Chaos) -> dict[str, tuple[float, float]]:
    """Per replica ever seen: its latest (completed, other) migration counts."""
    for replica in c.nlb.replicas:
        await c.routers.scrape(c.session, replica)
    return {r.name: (r.migrations, r.migrations_other) for r in c.replicas_seen}


Extras = dict[str, dict[str, str]]


def _delta(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], i: int) -> int:
    """How much field `i` grew over the replicas (one started meanwhile counts from 0)."""
    return round(sum(v[i] - before.get(k, (0.0, 0.0))[i] for k, v in after.items()))


async def _scenarios(c: Chaos, say: Callable[[str], object]) -> tuple[Extras, dict[str, int]]:
    extras: Extras = {}
    migrated: dict[str, int] = {}
    prometheus = await prepare_scale_from_zero(c)
    for scenario in scenarios(c.plan):
        say(f"# {scenario.name} ...")
        before = await _migrations(c)
        c.load.scenario, c.load.read_timeout_s = scenario.name, scenario.read_timeout_s
        if scenario.name == names.SCALE_FROM_ZERO:
            c.load.start(c.session)
            extras[scenario.name] = await scale_from_zero(c, prometheus)
        else:
            extras[scenario.name] = await STEPS[scenario.name](c)
        after = await _migrations(c)
        done, other = (_delta(before, after, i) for i in (0, 1))
        migrated[scenario.name] = done
        extras[scenario.name]["migrations_not_completed"] = str(other)
    await c.load.stop(max(c.plan.read_timeout_s, c.plan.hold_read_timeout_s) + TOTAL_MARGIN_S)
    return extras, migrated


async def _replay(c: Chaos, judged: list[tuple[Record, Verdict]]) -> tuple[int, int]:
    """Replay some requests (those a fault touched first) to an undisturbed engine directly: each
    must come back complete and identical to its computed twin."""
    touched = [r for r, v in judged if v.outcome != OK or v.mismatch]
    picks = (touched + [r for r, _ in judged])[:c.plan.twin_replays]
    url = c.engines.listed[0]
    identical = 0
    for record in picks:
        seen = await send(c.session, url, record.request, c.plan.read_timeout_s)
        verdict = classify(seen, record.request.twin)
        identical += verdict.outcome == OK and not verdict.mismatch
    return len(picks), identical


def _judge(plan: ChaosPlan, records: list[Record], extras: dict[str, dict[str, str]],
           migrated: dict[str, int]) -> tuple[list[Tally], list[tuple[Record, Verdict]], bool]:
    tallies = {s.name: Tally(s.name) for s in scenarios(plan)}
    judged = [(r, classify(r.seen, r.request.twin)) for r in records]
    for record, verdict in judged:
        tallies[record.scenario].add(record.seen, verdict)
    for name, tally in tallies.items():
        tally.migrated = migrated.get(name, 0)
        tally.extra.update(extras.get(name, {}))
    first = min((r for r in records if r.scenario == names.SCALE_FROM_ZERO), key=lambda r: r.launched_s,
                default=None)
    ttft = first.seen.ttft_s if first is not None else None
    within = ttft is not None and ttft <= plan.wake.load_delay_s + FIXED_LAGS_S
    zero = tallies[names.SCALE_FROM_ZERO].extra
    zero["first_ttft_s"] = "none" if ttft is None else f"{ttft:.3f}"
    zero["within_bound"] = "yes" if within else "no"
    return list(tallies.values()), judged, within


async def _run(plan: ChaosPlan, workdir: Path, procs: Processes, say: Callable[[str], object]) -> Report:
    targets = workdir / "engines.json"
    engines = Engines(plan, targets)
    engines.publish([])
    routers = Routers(plan, procs, workdir, targets)
    nlb = TargetList()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        c = Chaos(plan=plan, session=session, procs=procs, workdir=workdir, engines=engines, routers=routers,
                  nlb=nlb, load=Load(plan, nlb), say=say)
        try:
            for replica in await asyncio.gather(c.new_replica(), c.new_replica()):
                nlb.register(replica)
            extras, migrated = await _scenarios(c, say)
            tallies, judged, within = _judge(plan, c.load.records, extras, migrated)
            check = await _replay(c, judged)
        finally:
            engines.close()
    return Report(tallies=tallies, twin_check=check, from_zero_within_bound=within, records=judged)


def run_chaos(plan: ChaosPlan, workdir: Path, procs: Processes,
              say: Callable[[str], object] = print) -> Report:
    """Run every scenario once; raises `ChaosError` when the harness itself cannot go on."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        report = asyncio.run(asyncio.wait_for(_run(plan, workdir, procs, say), plan.deadline_s))
    except TimeoutError:
        raise ChaosError(f"the chaos run did not finish within {plan.deadline_s:.0f} s") from None
    write_requests(report, workdir / "requests.jsonl")
    return report


def write_requests(report: Report, path: Path) -> None:
    """Every request that was not OK or mismatched its twin, one JSON object a line (for diagnosis)."""
    with path.open("w") as out:
        for record, verdict in report.records:
            if verdict.outcome != OK or verdict.mismatch:
                out.write(json.dumps({"scenario": record.scenario, "rid": record.request.rid,
                                      "replica": record.replica, "launched_s": record.launched_s,
                                      "status": record.seen.status, "outcome": verdict.outcome,
                                      "mismatch": verdict.mismatch, "tokens": verdict.tokens,
                                      "reason": verdict.reason}) + "\n")
