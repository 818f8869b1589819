"""Warm-up before the first QPS point, as the original's run.sh does before its sweep.

Each user of the initial population who is past its first round resends its previous round
(everything but that round's answer) with `max_tokens=1`, a few at a time; nothing is
measured. The engines then hold (as far as their caches and the routing allow) what a
long-running steady state would hold: the point's first requests find their conversation
cached up to the previous question, and users at round 0 stay cold, as new users are. Same
user ids and headers as the measured requests, so a router places them where it will place
the user later.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench.client import ChatClient
from bench.point import Naming, initial_conversations
from bench.schedule import Pacing
from bench.workload import Conversation, Message, Workload


@dataclass(frozen=True, kw_only=True)
class WarmupResult:
    """How the warm-up went."""

    requests: int
    errors: int
    elapsed_s: float


async def warm_up(client: ChatClient, workload: Workload, pacing: Pacing, naming: Naming, *,
                  concurrency: int, stop: asyncio.Event) -> WarmupResult:
    """Resend every initial user's previous round once, `concurrency` at a time."""
    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    errors = 0

    async def one(conv: Conversation, messages: tuple[Message, ...]) -> None:
        nonlocal errors
        async with gate:
            if stop.is_set():
                return
            result = await client.stream_chat(messages, max_tokens=1, user_id=conv.user_id,
                                              request_id=f"{conv.user_id}-warmup")
            errors += bool(result.error or result.status != 200)

    conversations = [conv for _, conv in initial_conversations(workload, pacing, naming)]
    previous = [(conv, conv.previous_request()) for conv in conversations]
    sends = [(conv, messages) for conv, messages in previous if messages is not None]
    await asyncio.gather(*(one(conv, messages) for conv, messages in sends))
    return WarmupResult(requests=len(sends), errors=errors, elapsed_s=time.perf_counter() - started)
