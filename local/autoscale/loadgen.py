"""Open-loop load through the router: Poisson arrivals at the plan's offered rate, each a
streamed chat request with a fresh prompt (so every prefill is cold); every request's launch
time, TTFT and status are recorded. Bounded by the plan's duration; stops on its own."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from bench.client import ChatClient, new_session
from bench.workload import filler
from local.autoscale.plan import MODEL, AutoscalePlan


@dataclass(frozen=True)
class Sent:
    """One request: launch (run seconds), TTFT (s, None if no token came), HTTP status."""

    at: float
    ttft: float | None
    status: int


async def _one(client: ChatClient, plan: AutoscalePlan, rng: random.Random, t0: float, i: int,
               out: list[Sent]) -> None:
    prompt = filler(rng, plan.prompt_tokens)
    result = await client.stream_chat([{"role": "user", "content": prompt}], max_tokens=plan.max_tokens,
                                      user_id=f"user-{i}", request_id=f"as-{i}")
    ttft = result.token_times[0] - result.launch if result.token_times else None
    out.append(Sent(result.launch - t0, ttft, result.status))


async def drive(plan: AutoscalePlan, router_url: str, t0: float, out: list[Sent]) -> None:
    """Send the ramp's requests until the plan ends, then wait (bounded) for the last ones."""
    rng = random.Random(plan.seed)
    tasks: set[asyncio.Task] = set()
    async with new_session(request_timeout_s=60.0) as session:
        client = ChatClient(session, router_url, MODEL)
        now, i = 0.0, 0
        while now < plan.duration_s:
            rate = max(plan.offered_rps(now), 1e-3)
            now += rng.expovariate(rate)
            delay = t0 + now - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if now >= plan.duration_s:
                break
            task = asyncio.create_task(_one(client, plan, rng, t0, i, out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.wait(tasks, timeout=30.0)
        for task in tasks:
            task.cancel()
