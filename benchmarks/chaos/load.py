"""The chaos run's steady load: `users` conversations, each sending its next round as soon as
the last one ended (after a failure, `BACKOFF_S` later), every request to the next replica in
the NLB's target list, streamed.

A request belongs to the scenario running when it was launched. Each one is bounded: 2 s to
connect, the scenario's read timeout between two reads (the response head included), and a
hard total cap; what the client saw is kept raw (`tally.Observed`) and judged afterwards.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import orjson

from benchmarks.chaos.cluster import TargetList
from benchmarks.chaos.plan import CREATED, ChaosPlan
from benchmarks.chaos.tally import Observed, data_lines
from benchmarks.chaos.workload import Conversation, Request
from contracts import HEADER_REQUEST_ID, PATH_CHAT

CONNECT_S = 2.0
TOTAL_MARGIN_S = 30.0
BACKOFF_S = 0.2
"""A user waits this long after a failed request before its next round (as a client's retry
backoff would), so an instant refusal does not turn into a flood of counted failures."""
_CONTENT = b'"content":"'


@dataclass(frozen=True, kw_only=True)
class Record:
    scenario: str
    replica: str
    launched_s: float
    """Seconds since the load began."""
    request: Request
    seen: Observed


def _has_token(line: bytes) -> bool:
    """Whether an SSE line carries a non-empty content delta."""
    if _CONTENT not in line:
        return False
    for payload in data_lines(line):
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        for choice in (chunk.get("choices") or ()) if isinstance(chunk, dict) else ():
            if (choice.get("delta") or {}).get("content"):
                return True
    return False


async def send(session: aiohttp.ClientSession, url: str, request: Request, read_timeout_s: float) -> Observed:
    """One streamed request; never raises for HTTP or connection failures (they are what it records)."""
    timeout = aiohttp.ClientTimeout(total=read_timeout_s + TOTAL_MARGIN_S, sock_connect=CONNECT_S,
                                    sock_read=read_timeout_s)
    headers = {"content-type": "application/json", HEADER_REQUEST_ID: request.rid}
    start = time.perf_counter()
    status: int | None = None
    ttft: float | None = None
    body = bytearray()
    error = ""
    try:
        async with session.post(url + PATH_CHAT, data=orjson.dumps(request.body), headers=headers,
                                timeout=timeout) as resp:
            status = resp.status
            if status != 200:
                body += await resp.read()
            else:
                async for line in resp.content:
                    body += line
                    if ttft is None and _has_token(line):
                        ttft = time.perf_counter() - start
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Observed(status=status, error=error, body=bytes(body), ttft_s=ttft)


class Load:
    """The users; `scenario` and `read_timeout_s` are read at each launch."""

    def __init__(self, plan: ChaosPlan, nlb: TargetList) -> None:
        self.plan = plan
        self.nlb = nlb
        self.scenario = ""
        self.read_timeout_s = plan.read_timeout_s
        self.records: list[Record] = []
        self.in_flight = 0
        self._stop = asyncio.Event()
        self._t0 = time.perf_counter()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, session: aiohttp.ClientSession) -> None:
        self._t0 = time.perf_counter()
        self._tasks = [asyncio.create_task(self._user(session, u)) for u in range(self.plan.users)]

    async def stop(self, timeout_s: float) -> None:
        """No new request; wait up to `timeout_s` for the open ones, then cancel what is left."""
        self._stop.set()
        done, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a bug in the load surfaces here

    async def _user(self, session: aiohttp.ClientSession, user: int) -> None:
        plan = self.plan
        talk = Conversation(user, model=plan.model, prompt_tokens=plan.prompt_tokens,
                            history_rounds=plan.history_rounds, max_tokens=plan.max_tokens, created=CREATED)
        await asyncio.sleep(user * plan.request_s / plan.users)  # staggered: a steady load, not waves
        while not self._stop.is_set():
            request = talk.next_request()
            replica = self.nlb.next()
            scenario, launched = self.scenario, time.perf_counter() - self._t0
            self.in_flight += 1
            try:
                seen = await send(session, replica.url, request, self.read_timeout_s)
            finally:
                self.in_flight -= 1
            self.records.append(Record(scenario=scenario, replica=replica.name, launched_s=round(launched, 3),
                                       request=request, seen=seen))
            if seen.status != 200 or seen.error:
                await asyncio.sleep(BACKOFF_S)
