"""The scenarios, each an async step over the running cluster (`Chaos`), in `plan.ORDER`.

Each starts from where the previous one left the cluster (`plan.scenarios`) and leaves it
healthy with `scale_in_to` engines and two router replicas, the load running throughout. The
routers run with the deadlines and passive-ejection windows the stack renders for an 8B model,
on the run's compressed clock (`ChaosPlan.router_clock`). What each models:

- `scale_0_to_1`: no engine; requests are held by the routers; `local.autoscale.loop.scale_loop`
  (the scaler of `llm-stack autoscale --from-zero`: a real Prometheus scraping both replicas'
  `llmstack_router_held_requests`, KEDA's activation, the HPA arithmetic on the policy's clock)
  wakes the model; the engine is listed after the model's load delay; the held requests go on.
- `scale_4_to_2`: three engines join (listed, discovered by both routers); then two leave the
  targets file and `deregister_lead_s` later get SIGTERM (the Kubernetes discovery drops a pod
  on its `deletionTimestamp` while kubelet signals it); they drain per `--shutdown-timeout`.
- `engine_rollout`: each engine in turn: a new one starts and is discovered by both routers,
  then the old one leaves the targets file and gets SIGTERM (maxSurge 1, maxUnavailable 0).
- `router_rollout`: each replica in turn: a new one starts and joins the NLB's list once its
  /health is 200; the old one leaves the list, and after the preStop delay gets SIGTERM and
  drains (`drain_s`).
- `engine_sigkill`: an engine with streams running is SIGKILLed; it stays in the targets file
  (an endpoint stays until its readiness probe fails) for `restart_after_s`, then a replacement
  takes its place.
- `engine_hung`: one engine accepts requests and never answers (`stall`) for `fault_s`.
- `engine_stall`: one engine's streams stop after `stall_after_tokens` tokens, for `fault_s`.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.chaos import plan as names
from benchmarks.chaos.cluster import (
    Engines,
    Replica,
    Routers,
    TargetList,
    WakePool,
    running_requests,
    set_faults,
    wait_discovered,
)
from benchmarks.chaos.load import Load
from benchmarks.chaos.plan import ChaosPlan
from local.autoscale.loop import LoopError, prometheus_config, query, scale_loop, wait_until
from local.autoscale.summary import Change
from local.autoscale.wake import FIXED_LAGS_S
from local.demo.kube_state import KubeStateServer, deployments
from local.demo.prometheus import ROUTER_JOB
from local.procs import Processes, free_ports


@dataclass
class Chaos:
    """The running cluster and load a scenario acts on."""

    plan: ChaosPlan
    session: aiohttp.ClientSession
    procs: Processes
    workdir: Path
    engines: Engines
    routers: Routers
    nlb: TargetList
    load: Load
    say: Callable[[str], object] = print
    replicas_seen: list[Replica] = field(default_factory=list)

    async def discovered(self, count: int) -> None:
        await wait_discovered(self.session, self.routers, self.nlb.replicas, count, self.plan.start_timeout_s)

    async def soak(self) -> None:
        await asyncio.sleep(self.plan.soak_s)

    async def new_replica(self) -> Replica:
        replica = await self.routers.start(self.session)
        self.replicas_seen.append(replica)
        return replica

    async def retire_engines(self, urls: list[str]) -> tuple[list[int | None], list[int]]:
        """Unlist, wait the deregistration lead, SIGTERM and wait for the drained exits; the exit
        statuses and the streams each engine was running just before its SIGTERM."""
        self.engines.publish([u for u in self.engines.listed if u not in urls])
        await asyncio.sleep(self.plan.deregister_lead_s)
        running = [round(await running_requests(self.session, u)) for u in urls]
        statuses = await asyncio.gather(*(self.engines.terminate(u) for u in urls))
        return list(statuses), running


Step = Callable[[Chaos], Awaitable[dict[str, str]]]


def _exits(statuses: list[int | None]) -> str:
    return ",".join("killed" if s is None else str(s) for s in statuses)


def _counts(values: list[int]) -> str:
    return ",".join(map(str, values))


async def prepare_scale_from_zero(c: Chaos) -> tuple[str, subprocess.Popen, KubeStateServer]:
    """Before the load starts (setup, not part of the scenario): a Prometheus scraping the
    engines (the targets file), both replicas and a kube-state-metrics stand-in counting the
    listed engines as the Deployment's available replicas (what tells the engine triggers a
    model at zero from a lost scrape); its URL, process and the stand-in."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise LoopError("the prometheus binary is not installed (apt-get install prometheus)")
    (port,) = free_ports(1)
    routers = [r.url.removeprefix("http://") for r in c.nlb.replicas]
    config = c.workdir / "prometheus.yml"
    policy = c.plan.wake.policy()
    deployment = (policy.namespace, policy.deployment)
    kube = KubeStateServer(lambda: deployments({deployment: len(c.engines.listed)}))
    kube.start()
    config.write_text(prometheus_config(c.engines.targets, routers, c.plan.wake.scrape_interval_s, kube.url))
    proc = c.procs.start("prometheus", [binary, f"--config.file={config}",
                                        f"--storage.tsdb.path={c.workdir / 'tsdb'}",
                                        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"])
    prom = f"http://127.0.0.1:{port}"
    scraped = f'count(up{{job="{ROUTER_JOB}"}} == 1) or vector(0)'

    async def both() -> bool:
        return await query(c.session, prom, scraped) >= len(routers)
    await wait_until(both, c.plan.start_timeout_s, "Prometheus scraping both routers")
    return prom, proc, kube


Prepared = tuple[str, subprocess.Popen, KubeStateServer]


async def scale_from_zero(c: Chaos, prometheus: Prepared) -> dict[str, str]:
    prom, prom_proc, kube = prometheus
    wake = c.plan.wake
    pool = WakePool(c.engines, wake.load_delay_s)
    t0 = time.perf_counter()
    changes: list[Change] = []
    scaler = asyncio.create_task(scale_loop(wake.policy(), wake.time_scale, wake.budget_s, pool, c.session,
                                            prom, t0, changes, {}))

    async def ticker() -> None:
        while True:
            pool.tick(time.perf_counter() - t0)
            await asyncio.sleep(0.05)
    ticking = asyncio.create_task(ticker())
    try:
        async def awake() -> bool:
            if scaler.done():
                scaler.result()
                raise LoopError("the scaler stopped before the model woke")
            return bool(c.engines.listed)
        await wait_until(awake, wake.first_answer_bound_s + c.plan.start_timeout_s, "scale from zero")
        await c.discovered(1)

        async def answered() -> bool:
            return any(r.scenario == names.SCALE_FROM_ZERO for r in c.load.records)
        await wait_until(answered, c.plan.hold_read_timeout_s, "the first held request")
        await c.soak()
    finally:
        for task in (scaler, ticking):
            task.cancel()
        await asyncio.gather(scaler, ticking, return_exceptions=True)
        await asyncio.to_thread(c.procs.stop, prom_proc)
        kube.stop()
    woke = [ch.t for ch in changes if ch.after > ch.before]
    return {"woke_at_s": f"{woke[0]:.2f}" if woke else "never", "load_s": f"{wake.load_delay_s:.2f}",
            "bound_s": f"{wake.load_delay_s + FIXED_LAGS_S:.2f}"}


async def scale_in(c: Chaos) -> dict[str, str]:
    plan = c.plan
    added = await c.engines.start(plan.scale_in_from - len(c.engines.listed))
    c.engines.publish(c.engines.listed + added)
    await c.discovered(plan.scale_in_from)
    await c.soak()
    leaving = c.engines.listed[-(plan.scale_in_from - plan.scale_in_to):]
    statuses, running = await c.retire_engines(leaving)
    await c.discovered(plan.scale_in_to)
    await c.soak()
    return {"engine_exits": _exits(statuses), "in_flight_at_sigterm": _counts(running)}


async def engine_rollout(c: Chaos) -> dict[str, str]:
    statuses: list[int | None] = []
    running: list[int] = []
    count = len(c.engines.listed)
    for old in list(c.engines.listed):
        (new,) = await c.engines.start(1)
        c.engines.publish([*c.engines.listed, new])
        await c.discovered(count + 1)
        exits, streams = await c.retire_engines([old])
        statuses += exits
        running += streams
        await c.discovered(count)
    await c.soak()
    return {"engine_exits": _exits(statuses), "in_flight_at_sigterm": _counts(running)}


async def router_rollout(c: Chaos) -> dict[str, str]:
    statuses = []
    running = []
    for old in list(c.nlb.replicas):
        new = await c.new_replica()
        c.nlb.register(new)
        c.nlb.deregister(old)
        await asyncio.sleep(c.plan.router_prestop_s)
        await c.routers.scrape(c.session, old)
        running.append(round(old.in_flight))
        statuses.append(await c.routers.stop(old))
    await c.soak()
    return {"router_exits": _exits(statuses), "in_flight_at_sigterm": _counts(running)}


async def engine_sigkill(c: Chaos) -> dict[str, str]:
    await c.soak()
    victim = ""

    async def busy() -> bool:
        nonlocal victim
        for url in c.engines.listed:
            if await running_requests(c.session, url) > 0:
                victim = url
                return True
        return False
    await wait_until(busy, c.plan.start_timeout_s, "an engine with streams running")
    running = round(await running_requests(c.session, victim))
    await c.engines.kill(victim)
    await asyncio.sleep(c.plan.restart_after_s)
    (new,) = await c.engines.start(1)
    c.engines.publish([new if u == victim else u for u in c.engines.listed])
    await c.discovered(len(c.engines.listed))
    await c.soak()
    return {"in_flight_at_sigkill": str(running)}


async def _fault_window(c: Chaos, faults: dict[str, object], victim: str) -> None:
    await c.soak()
    await set_faults(c.session, victim, faults)
    await asyncio.sleep(c.plan.fault_s)
    await set_faults(c.session, victim, {})
    await asyncio.sleep(c.plan.read_timeout_s)  # what the fault caught resolves (client patience)
    await c.soak()


async def engine_hung(c: Chaos) -> dict[str, str]:
    await _fault_window(c, {"stall": True}, c.engines.listed[0])
    return {}


async def engine_stall(c: Chaos) -> dict[str, str]:
    await _fault_window(c, {"stall_after_tokens": c.plan.stall_after_tokens}, c.engines.listed[-1])
    return {}


STEPS: dict[str, Step] = {
    names.SCALE_IN: scale_in,
    names.ENGINE_ROLLOUT: engine_rollout,
    names.ROUTER_ROLLOUT: router_rollout,
    names.ENGINE_SIGKILL: engine_sigkill,
    names.ENGINE_HUNG: engine_hung,
    names.ENGINE_STALL: engine_stall,
}
