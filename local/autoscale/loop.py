"""The closed loop's I/O shell. In one asyncio loop: the emulated engines (`EnginePool`), the
load ramp (`loadgen`), and the local scaler, which every polling interval (time-scaled)
evaluates the policy's rendered trigger query and the router-demand query on a real
Prometheus, runs KEDA's activation and the HPA arithmetic (`policies.autoscaling.activation`)
on the policy's own clock, and starts or stops engines. The router (the real one, discovering
engines from the targets file) and Prometheus (file_sd on the same file) are child
processes. Everything listens on loopback, is bounded by the plan, and stops at the end."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp

from emulator.config import EngineConfig
from local.autoscale import loadgen
from local.autoscale.engines import EnginePool
from local.autoscale.plan import MODEL, AutoscalePlan
from local.autoscale.summary import Change, Sample
from local.demo.kube_state import KubeStateServer, deployments
from local.demo.prometheus import KUBE_STATE_JOB, ROUTER_JOB
from local.procs import Processes, free_ports
from policies.autoscaling.activation import ScalerState, decide
from policies.autoscaling.policy import METRICS, EnginePolicy

ENGINE_JOB = "llm-stack-engines"
_READY_S = 40.0


class LoopError(RuntimeError):
    """The closed loop could not run (a process did not start, Prometheus is missing)."""


def prometheus_config(targets_file: Path, router: str | Sequence[str], interval_s: float,
                      kube_state: str) -> str:
    """prometheus.yml: engines from the targets file (file_sd), the router (one `host:port`, or
    several replicas) and the kube-state-metrics stand-in statically (its labels honoured, as
    kube-prometheus-stack does)."""
    routers = [router] if isinstance(router, str) else list(router)
    every = f"{round(interval_s * 1000)}ms"  # Prometheus durations take integer units
    doc = {"global": {"scrape_interval": every, "scrape_timeout": every, "evaluation_interval": every},
           "scrape_configs": [
               {"job_name": ENGINE_JOB,
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}]},
               {"job_name": ROUTER_JOB, "static_configs": [{"targets": routers}]},
               {"job_name": KUBE_STATE_JOB, "honor_labels": True,
                "static_configs": [{"targets": [kube_state.removeprefix("http://")]}]}]}
    return json.dumps(doc, indent=2)


@contextlib.contextmanager
def kube_state(pool: EnginePool, policy: EnginePolicy) -> Iterator[str]:
    """A kube-state-metrics stand-in counting the pool's loaded engines as the policy's
    Deployment's available replicas (what tells the engine triggers a model at zero engines
    from a lost scrape); yields its URL."""
    server = KubeStateServer(lambda: deployments({(policy.namespace, policy.deployment): pool.available}))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def router_settings(targets_file: Path) -> dict:
    """The router's settings file: file discovery, the one model, fast health checks."""
    return {"file_discovery": {"path": str(targets_file), "interval_s": 0.2}, "models": [MODEL],
            "log_level": "warning", "policy": {"kind": "least_load", "params": {}},
            "health": {"interval_s": 0.2, "timeout_s": 0.5, "unhealthy_after": 2, "healthy_after": 1,
                       "metrics_interval_s": 0.2}}


async def answer(session: aiohttp.ClientSession, prom: str, promql: str) -> float | None:
    """The single value of an instant query; None when it answers nothing (an error to KEDA
    with `ignoreNullValues: false`, which the policy's fallback handles)."""
    async with session.get(f"{prom}/api/v1/query", params={"query": promql}) as resp:
        body = await resp.json()
    result = body["data"]["result"]
    if body.get("status") != "success" or len(result) > 1:
        raise LoopError(f"query {promql!r} returned {body}")
    return float(result[0]["value"][1]) if result else None


async def query(session: aiohttp.ClientSession, prom: str, promql: str) -> float:
    """The single value of an instant query that must answer."""
    value = await answer(session, prom, promql)
    if value is None:
        raise LoopError(f"query {promql!r} answered nothing")
    return value


async def wait_until(check, deadline_s: float, what: str) -> None:
    """Poll the async `check` until it is true, failing after `deadline_s`."""
    end = time.monotonic() + deadline_s
    last = ""
    while time.monotonic() < end:
        try:
            if await check():
                return
        except (aiohttp.ClientError, OSError, LoopError, KeyError, ValueError) as exc:
            last = f" ({exc})"
        await asyncio.sleep(0.1)
    raise LoopError(f"{what} not ready after {deadline_s:.0f} s{last}")


@dataclass
class Run:
    """What the loop records."""

    samples: list[Sample] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    sent: list[loadgen.Sent] = field(default_factory=list)
    trigger_max: dict[str, float] = field(default_factory=dict)
    """Highest value each metric kind's rendered trigger query returned during the run."""


async def _ok(session: aiohttp.ClientSession, url: str) -> bool:
    async with session.get(url) as resp:
        return resp.status == 200


class ScaledPool(Protocol):
    """What the scaler drives: `EnginePool`, or any pool of engines with a replica count."""

    @property
    def replicas(self) -> int: ...

    async def scale_to(self, count: int, now: float) -> None: ...


async def scale_loop(policy: EnginePolicy, time_scale: float, until_s: float, pool: ScaledPool,
                     session: aiohttp.ClientSession, prom: str, t0: float, changes: list[Change],
                     last: dict, each_poll=None) -> None:
    """The local scaler: every polling interval (time-scaled) the policy's trigger queries on
    Prometheus (load, router demand, requests held by the router), KEDA's activation and the
    HPA arithmetic on the policy's clock, then engines started or removed."""
    state = ScalerState()
    every = policy.polling_interval_s * time_scale
    while (t := time.perf_counter() - t0) < until_s:
        value = await answer(session, prom, policy.query())
        demand = await answer(session, prom, policy.demand_query())
        held = await answer(session, prom, policy.held_query())
        last.update(queue=value or 0.0, demand=demand or 0.0, held=held or 0.0)
        if each_poll is not None:
            await each_poll()
        desired, state = decide(state, policy, now=t / time_scale, current=pool.replicas, value=value,
                                demand=demand, held=held)
        if desired != pool.replicas:
            changes.append(Change(round(t, 2), pool.replicas, desired))
            await pool.scale_to(desired, t)
        await asyncio.sleep(every)


async def _scaler(plan: AutoscalePlan, pool: EnginePool, session: aiohttp.ClientSession, prom: str,
                  t0: float, run: Run, last: dict) -> None:
    await scale_loop(plan.policy(), plan.time_scale, plan.duration_s, pool, session, prom, t0, run.changes,
                     last, lambda: _other_triggers(session, prom, plan, run))


def _policies(plan: AutoscalePlan) -> dict[str, EnginePolicy]:
    base = plan.policy()
    return {m: dataclasses.replace(base, metric=m, target=0.8 if m == "kvCache" else 1.0) for m in METRICS}


def _every_query(plan: AutoscalePlan) -> list[str]:
    policy = plan.policy()
    return [p.query() for p in _policies(plan).values()] + [policy.demand_query(), policy.held_query()]


async def _other_triggers(session: aiohttp.ClientSession, prom: str, plan: AutoscalePlan, run: Run) -> None:
    """Evaluate every metric kind's rendered query too, so the run proves each returns data."""
    for metric, policy in _policies(plan).items():
        value = await answer(session, prom, policy.query())
        if value is not None:  # a just-loaded engine's first scrape may be a poll away
            run.trigger_max[metric] = max(run.trigger_max.get(metric, 0.0), value)
    demand = await query(session, prom, plan.policy().demand_query())
    run.trigger_max["demand"] = max(run.trigger_max.get("demand", 0.0), demand)


async def _sampler(plan: AutoscalePlan, pool: EnginePool, t0: float, run: Run, last: dict) -> None:
    while (t := time.perf_counter() - t0) < plan.duration_s:
        await pool.tick(t)
        run.samples.append(Sample(round(t, 2), round(plan.offered_rps(t), 3), pool.replicas,
                                  pool.ready(t), last.get("queue", 0.0), last.get("demand", 0.0)))
        await asyncio.sleep(0.25)


async def _drive(plan: AutoscalePlan, pool: EnginePool, prom: str, router: str) -> Run:
    run = Run()
    last: dict[str, float] = {}  # the scaler's latest queue and demand, for the sampler
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        up = f'count(up{{job="{ENGINE_JOB}"}} == 1) >= {plan.min_engines}'
        await wait_until(lambda: _ok(session, f"{router}/health"), _READY_S, "router")
        await wait_until(lambda: _has(session, prom, up), _READY_S, "Prometheus scraping the engines")
        await wait_scraped(session, prom, KUBE_STATE_JOB)
        for promql in _every_query(plan):  # rates answer from a source's second scrape on
            await wait_until(lambda q=promql: _has(session, prom, q), _READY_S, f"an answer to {promql}")
        t0 = time.perf_counter()
        await asyncio.gather(loadgen.drive(plan, router, t0, run.sent),
                             _scaler(plan, pool, session, prom, t0, run, last),
                             _sampler(plan, pool, t0, run, last))
    return run


async def wait_scraped(session: aiohttp.ClientSession, prom: str, job: str) -> None:
    """Until Prometheus has scraped `job` once (bounded)."""
    await wait_until(lambda: _has(session, prom, f'up{{job="{job}"}} == 1'), _READY_S,
                     f"Prometheus scraping {job}")


async def _has(session: aiohttp.ClientSession, prom: str, promql: str) -> bool:
    async with session.get(f"{prom}/api/v1/query", params={"query": promql}) as resp:
        return bool((await resp.json())["data"]["result"])


def start_processes(procs: Processes, workdir: Path, targets: Path, scrape_interval_s: float,
                    kube_state_url: str) -> tuple[str, str]:
    """Prometheus and the router, both following the targets file; returns their base URLs."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise LoopError("the prometheus binary is not installed (apt-get install prometheus)")
    router_port, prom_port = free_ports(2)
    (workdir / "prometheus.yml").write_text(prometheus_config(targets, f"127.0.0.1:{router_port}",
                                                              scrape_interval_s, kube_state_url))
    procs.start("prometheus", [binary, f"--config.file={workdir / 'prometheus.yml'}",
                               f"--storage.tsdb.path={workdir / 'tsdb'}",
                               f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"])
    (workdir / "router.json").write_text(json.dumps(router_settings(targets)))
    llm_stack = str(Path(sys.executable).with_name("llm-stack"))
    procs.start("router", [llm_stack, "router", "--config", str(workdir / "router.json"),
                           "--host", "127.0.0.1", "--port", str(router_port)])
    return f"http://127.0.0.1:{router_port}", f"http://127.0.0.1:{prom_port}"


async def _main(plan: AutoscalePlan, workdir: Path, procs: Processes) -> Run:
    targets = workdir / "engines.json"
    config = EngineConfig(model=MODEL, max_num_seqs=plan.max_num_seqs, timing=plan.timing)
    pool = EnginePool(config, targets, load_delay_s=plan.load_time_s * plan.time_scale, drain_s=1.0)
    try:
        await pool.scale_to(plan.min_engines, now=0.0, loaded=True)  # running before the run begins
        with kube_state(pool, plan.policy()) as kube_url:
            router, prom = start_processes(procs, workdir, targets, plan.scrape_interval_s, kube_url)
            return await _drive(plan, pool, prom, router)
    finally:
        await pool.close()


def run_loop(plan: AutoscalePlan, workdir: Path, procs: Processes) -> Run:
    """Run the whole closed loop once; `workdir` gets the targets file, configs and the TSDB."""
    workdir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_main(plan, workdir, procs))
