"""`llm-stack autoscale --from-zero`: dev-style scale from zero, end to end on loopback.

A model with `minReplicas: 0` and no engine running. The router (file discovery of an empty
targets file) must be ready and list the model; the first request is held by the router,
which counts it in `llmstack_router_held_requests`; Prometheus scrapes that; the local scaler
evaluates the rendered `held` trigger query, KEDA's activation wakes the model (0 → 1); the
engine loads (the model's load time, on the policy clock); the router discovers it and sends
the held request on, which is answered. A few more requests follow, then the model goes back
to zero after the cooldown (KEDA's `cooldownPeriod`, the policy's scale-down window).

Verdict (`verdict`, pure): the first request is answered 200 within the engine's load delay
plus one polling interval (the scaler sees the held request on its next poll) plus 2 s of
this machine's fixed lags (scrape interval, file discovery, the router's health check); every
later request 200; back to zero engines at the end."""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

from bench.client import ChatClient, StreamResult, new_session, served_models
from bench.workload import filler
from emulator.config import EngineConfig
from emulator.timing import Timing
from local.autoscale.engines import EnginePool
from local.autoscale.loop import (
    LoopError,
    kube_state,
    scale_loop,
    start_processes,
    wait_scraped,
    wait_until,
)
from local.autoscale.plan import MODEL
from local.autoscale.summary import Change
from local.demo.prometheus import KUBE_STATE_JOB, NAMESPACE, ROUTER_JOB
from local.procs import Processes
from policies.autoscaling.policy import EnginePolicy

FIXED_LAGS_S = 2.0
_READY_S = 40.0


@dataclass(frozen=True, kw_only=True)
class WakePlan:
    """The scale-from-zero run's shape; policy times in cluster seconds, scaled by `time_scale`."""

    time_scale: float = 0.05
    load_time_s: int = 73  # dev's 3B model (the rendered ScaledObject's scale periods)
    polling_interval_s: int = 15  # KEDA's default pollingInterval
    later_requests: int = 3
    prompt_tokens: int = 200
    max_tokens: int = 16
    scrape_interval_s: float = 0.5

    @classmethod
    def quick(cls) -> WakePlan:
        """The suite's version: a faster policy clock (about 15 s in all)."""
        return cls(time_scale=0.03, later_requests=2)

    def policy(self) -> EnginePolicy:
        return EnginePolicy(deployment="emulated", served_name=MODEL, namespace=NAMESPACE, metric="queue",
                            target=2.0, min_replicas=0, max_replicas=1, load_time_s=self.load_time_s,
                            scale_down_window_s=0, polling_interval_s=self.polling_interval_s,
                            rate_window=f"{max(2, math.ceil(120 * self.time_scale))}s")  # integer units

    @property
    def load_delay_s(self) -> float:
        return self.load_time_s * self.time_scale

    @property
    def first_answer_bound_s(self) -> float:
        """Run seconds within which the first request must be answered (module docstring)."""
        return self.load_delay_s + self.polling_interval_s * self.time_scale + FIXED_LAGS_S

    @property
    def budget_s(self) -> float:
        """The whole run's bound: wake, serve, then the cooldown back to zero, with margin."""
        return self.first_answer_bound_s + self.policy().down_window_s * self.time_scale + 20.0


def verdict(plan: WakePlan, *, ready_at_zero: bool, models: list[str], first: StreamResult,
            later: list[int], changes: list[Change], final_replicas: int) -> dict:
    """The run's summary document (JSON-able)."""
    ttft = first.token_times[0] - first.launch if first.token_times else None
    first_ok = first.status == 200 and first.done is not None and ttft is not None
    in_bound = first_ok and ttft is not None and ttft <= plan.first_answer_bound_s
    ok = ready_at_zero and MODEL in models and in_bound and all(s == 200 for s in later) \
        and final_replicas == 0
    return {"plan": asdict(plan), "ready_with_zero_engines": ready_at_zero, "models_listed": models,
            "first_status": first.status, "first_error": first.error,
            "first_ttft_s": None if ttft is None else round(ttft, 3),
            "first_answer_bound_s": round(plan.first_answer_bound_s, 3),
            "engine_load_delay_s": round(plan.load_delay_s, 3), "later_statuses": later,
            "changes": [asdict(c) for c in changes], "final_replicas": final_replicas, "ok": ok}


def lines(doc: dict) -> list[str]:
    """Human-readable summary lines."""
    ups = [c for c in doc["changes"] if c["after"] > c["before"]]
    return [
        f"at zero engines: router ready {doc['ready_with_zero_engines']}, /v1/models {doc['models_listed']}",
        f"first request: HTTP {doc['first_status']}, first token after {doc['first_ttft_s']} s "
        f"(engine load {doc['engine_load_delay_s']} s; bound {doc['first_answer_bound_s']} s)"
        + (f", error {doc['first_error']}" if doc["first_error"] else ""),
        f"woke at {ups[0]['t'] if ups else 'never'} s; later requests {doc['later_statuses']}; "
        f"changes {[(c['t'], c['before'], c['after']) for c in doc['changes']]}; "
        f"final engines {doc['final_replicas']}",
        f"scale from zero: {'OK' if doc['ok'] else 'FAILED'}",
    ]


async def _ticker(pool: EnginePool, t0: float) -> None:
    while True:
        await pool.tick(time.perf_counter() - t0)
        await asyncio.sleep(0.05)


async def _ready_at_zero(session: aiohttp.ClientSession, router: str, pool: EnginePool) -> bool:
    async with session.get(f"{router}/health") as resp:
        return resp.status == 200 and pool.replicas == 0


async def _requests(plan: WakePlan, router: str) -> tuple[StreamResult, list[int]]:
    async with new_session(request_timeout_s=60.0) as session:
        client = ChatClient(session, router, MODEL)
        rng = random.Random(0)

        async def one(i: int) -> StreamResult:
            messages = [{"role": "user", "content": filler(rng, plan.prompt_tokens)}]
            return await client.stream_chat(messages, max_tokens=plan.max_tokens, user_id=f"user-{i}",
                                            request_id=f"wake-{i}")
        first = await one(0)
        later = [(await one(i)).status for i in range(1, plan.later_requests + 1)]
    return first, later


async def _run(plan: WakePlan, workdir: Path, procs: Processes) -> dict:
    targets = workdir / "engines.json"
    config = EngineConfig(model=MODEL, timing=Timing(time_scale=1.0))
    pool = EnginePool(config, targets, load_delay_s=plan.load_delay_s, drain_s=0.5)
    await pool.scale_to(0, now=0.0)  # publishes the empty targets file
    try:
        with kube_state(pool, plan.policy()) as kube_url:
            router, prom = start_processes(procs, workdir, targets, plan.scrape_interval_s, kube_url)
            return await _wake(plan, pool, router, prom)
    finally:
        await pool.close()


async def _wake(plan: WakePlan, pool: EnginePool, router: str, prom: str) -> dict:
    tasks: list[asyncio.Task] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            await wait_until(lambda: _ready_at_zero(session, router, pool), _READY_S, "router with no engine")
            models = await served_models(session, router)
            await wait_scraped(session, prom, ROUTER_JOB)
            await wait_scraped(session, prom, KUBE_STATE_JOB)
            t0 = time.perf_counter()
            changes: list[Change] = []
            scaler = scale_loop(plan.policy(), plan.time_scale, plan.budget_s, pool, session, prom, t0,
                                changes, {})
            tasks = [asyncio.create_task(scaler),
                     asyncio.create_task(_ticker(pool, t0))]
            sending = asyncio.create_task(_requests(plan, router))
            tasks.append(sending)
            await asyncio.wait([sending, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            if not sending.done():  # the scaler stopped first: its error, or its deadline
                tasks[0].result()
                raise LoopError("the scaler ran out of time before the requests were answered")
            first, later = sending.result()
            end = t0 + plan.budget_s
            while pool.replicas and time.perf_counter() < end and not tasks[0].done():
                await asyncio.sleep(0.1)
        return verdict(plan, ready_at_zero=True, models=models, first=first, later=later, changes=changes,
                       final_replicas=pool.replicas)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_wake(plan: WakePlan, workdir: Path, procs: Processes) -> dict:
    """Run the scale-from-zero scenario once (bounded by `plan.budget_s`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(asyncio.wait_for(_run(plan, workdir, procs), plan.budget_s + _READY_S + 30))
    except TimeoutError:
        bound = plan.budget_s + _READY_S + 30
        raise LoopError(f"the scale-from-zero run did not finish within {bound:.0f} s") from None
