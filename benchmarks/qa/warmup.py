"""Warm-up before the first QPS point, as the original's run.sh does before its sweep.

Each user of the initial population sends the conversation it will open the point with, with
`max_tokens=1`, a few at a time; nothing is measured. The engines then hold (as far as their
caches and the routing allow) what a long-running steady state would hold, so the point's
first requests are not all cold prefills. Same user ids and headers as the measured requests,
so a router places them where it will place the user later.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from benchmarks.qa.client import ChatClient
from benchmarks.qa.point import Naming, initial_conversations
from benchmarks.qa.schedule import Pacing
from benchmarks.qa.workload import Workload


@dataclass(frozen=True, kw_only=True)
class WarmupResult:
    """How the warm-up went."""

    requests: int
    errors: int
    elapsed_s: float


async def warm_up(client: ChatClient, workload: Workload, pacing: Pacing, naming: Naming, *,
                  concurrency: int, stop: asyncio.Event) -> WarmupResult:
    """Send every initial user's opening conversation once, `concurrency` at a time."""
    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    errors = 0

    async def one(index: int, conv) -> None:
        nonlocal errors
        async with gate:
            if stop.is_set():
                return
            messages = conv.peek(conv.rounds_asked)
            result = await client.stream_chat(messages, max_tokens=1, user_id=conv.user_id,
                                              request_id=f"{conv.user_id}-warmup")
            errors += bool(result.error or result.status != 200)

    users = initial_conversations(workload, pacing, naming)
    await asyncio.gather(*(one(i, conv) for i, (_, conv) in enumerate(users)))
    return WarmupResult(requests=len(users), errors=errors, elapsed_s=time.perf_counter() - started)
