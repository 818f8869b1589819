"""The conversations: multi-round QA users (`bench.workload`) sending streamed chats through a
router, and what each request's routing decision predicted.

Each user is a closed loop: a question, its whole answer, `think_s`, the next question (the
answer's text goes into the history as the engine wrote it). Requests carry `x-request-id`,
which the router forwards and the emulated engine journals (`GET /emulator/requests`: which
engine served it, its prompt tokens and its delivered GPU and CPU hit tokens).

**Attributing a prediction to one request.** The router exports only cumulative counters
(`llmstack_router_kv_predicted_tokens_total` per engine); its routing decisions are made one at
a time. So, per replica, a *gate* admits one request at a time into the router's decision:
it sends the request, polls the replica's `/metrics` until `routing_decisions_total` has moved
(the decision and its prediction are recorded in the same step of the router's loop), takes the
predicted counters' growth as that request's prediction, and lets the next request in. Only the
decision is serialised: prefills and decodes still overlap on the engines. Ungated clients
(`gated=False`) skip this; their phases read the counters' totals only.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import orjson

from bench.workload import Workload, WorkloadSpec
from benchmarks.kv_events import scrape
from benchmarks.kv_events.cluster import CACHED, REQUESTS, Replica
from benchmarks.kv_events.plan import KvPlan
from contracts import HEADER_REQUEST_ID, PATH_CHAT, PATH_METRICS

_POLL_S = 0.001


@dataclass
class Record:
    """One request as the client saw it, completed later from the engine's journal."""

    rid: str
    user: int
    round: int
    replica: str
    phase: str
    launched: float
    """`time.monotonic()` when it was sent."""
    ttft_s: float | None = None
    status: int = 0
    predicted: dict[str, float] = field(default_factory=dict)
    """Per engine, the tokens the router predicted cached (gated requests only)."""
    engine: str | None = None
    prompt_tokens: int = 0
    hit_tokens: int = 0
    error: str = ""
    available: int | None = None
    """The most cached tokens of its prompt any engine held as it was routed (`Users.probe`)."""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.ttft_s is not None


class Gate:
    """One replica's decision gate (see the module docstring)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.lock = asyncio.Lock()
        self.decisions = 0.0
        self.predicted: dict[str, float] | None = None

    async def prime(self, session: aiohttp.ClientSession) -> None:
        self.decisions, self.predicted = _read(await _metrics(session, self.replica))

    async def admit(self, session: aiohttp.ClientSession, send: asyncio.Task) -> dict[str, float]:
        """Wait until the request `send` carries has been routed; its prediction per engine."""
        before = self.decisions
        while True:
            decided, predicted = _read(await _metrics(session, self.replica))
            if decided > before or send.done():
                break
            await asyncio.sleep(_POLL_S)
        grown = {e: v - (self.predicted or {}).get(e, 0.0) for e, v in (predicted or {}).items()}
        self.decisions, self.predicted = decided, predicted
        return {e: v for e, v in grown.items() if v}


async def _metrics(session: aiohttp.ClientSession, replica: Replica) -> str:
    async with session.get(replica.url + PATH_METRICS) as resp:
        return await resp.text()


def _read(text: str) -> tuple[float, dict[str, float] | None]:
    return scrape.decisions(text), scrape.predicted_by_engine(text)


def workload(plan: KvPlan) -> Workload:
    return Workload(WorkloadSpec(system_prompt_tokens=plan.system_prompt_tokens,
                                 history_tokens=plan.history_tokens, question_tokens=plan.question_tokens,
                                 answer_tokens=plan.answer_tokens, rounds=1000, seed=plan.seed))


class Users:
    """Every user's conversation, the records of what they sent, and the router each goes to."""

    def __init__(self, plan: KvPlan, session: aiohttp.ClientSession) -> None:
        self.plan = plan
        self.session = session
        self.load = workload(plan)
        self.conversations = [self.load.conversation(f"user-{i}") for i in range(plan.users)]
        self.records: list[Record] = []
        self.phase = ""
        self.gates: dict[str, Gate] = {}
        self.probe: Sequence[str] = ()
        """Engines asked, before each gated request is routed, how much of its prompt they hold
        (`POST /emulator/cached`): what the router could have found."""

    async def gate(self, replica: Replica) -> Gate:
        if replica.name not in self.gates:
            gate = Gate(replica)
            await gate.prime(self.session)
            self.gates[replica.name] = gate
        return self.gates[replica.name]

    async def rounds(self, route: Callable[[int], Replica], count: int, *, gated: bool,
                     users: Sequence[int] | None = None) -> None:
        """`count` more rounds of every user in `users` (all by default), each through `route(user)`,
        users starting `think_s / users` apart."""
        chosen = list(range(self.plan.users)) if users is None else list(users)
        gap = self.plan.think_s / max(len(chosen), 1)

        async def user(slot: int, index: int) -> None:
            await asyncio.sleep(slot * gap)
            for n in range(count):
                if n:
                    await asyncio.sleep(self.plan.think_s)
                await self.ask(index, route(index), gated=gated)
        await asyncio.gather(*(user(slot, i) for slot, i in enumerate(chosen)))

    async def until(self, route: Callable[[int], Replica], end: float, *, gated: bool) -> None:
        """Every user asks round after round until `end` (`time.monotonic()`); none starts past it."""
        gap = self.plan.think_s / self.plan.users

        async def user(index: int) -> None:
            await asyncio.sleep(index * gap)
            while time.monotonic() < end:
                await self.ask(index, route(index), gated=gated)
                await asyncio.sleep(self.plan.think_s)
        await asyncio.gather(*(user(i) for i in range(self.plan.users)))

    async def ask(self, index: int, replica: Replica, *, gated: bool) -> Record:
        """The user's next round through `replica`; its answer joins the conversation."""
        conv = self.conversations[index]
        round_index = conv.rounds_asked
        messages = conv.ask(round_index)
        body = orjson.dumps({"model": self.plan.model, "messages": list(messages), "stream": True,
                             "max_tokens": conv.max_tokens(round_index), "ignore_eos": True})
        record = Record(rid=f"kv-{uuid.uuid4().hex}", user=index, round=round_index, replica=replica.name,
                        phase=self.phase, launched=time.monotonic())
        self.records.append(record)
        if gated:
            gate = await self.gate(replica)
            async with gate.lock:
                if self.probe:
                    record.available = await self._available(body)
                record.launched = time.monotonic()
                send = asyncio.create_task(self._send(replica, body, record))
                record.predicted = await gate.admit(self.session, send)
        else:
            send = asyncio.create_task(self._send(replica, body, record))
        answer = await send
        conv.answer(answer)
        return record

    async def _available(self, body: bytes) -> int:
        """The most cached tokens (GPU and CPU tier) any engine in `probe` holds of `body`'s prompt."""
        async def held(url: str) -> int:
            async with self.session.post(url + CACHED, data=body) as resp:
                resp.raise_for_status()
                cached = await resp.json()
            return int(cached["gpu_hit_tokens"]) + int(cached["cpu_hit_tokens"])
        return max(await asyncio.gather(*(held(url) for url in self.probe)))

    async def _send(self, replica: Replica, body: bytes, record: Record) -> str:
        """POST the chat, read the stream; the answer's text ('' on failure)."""
        parts: list[str] = []
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self.plan.read_timeout_s)
        try:
            async with self.session.post(replica.url + PATH_CHAT, data=body, timeout=timeout,
                                         headers={HEADER_REQUEST_ID: record.rid,
                                                  "content-type": "application/json"}) as resp:
                record.status = resp.status
                if resp.status != 200:
                    await resp.read()
                    return ""
                async for line in resp.content:
                    text = _content(line)
                    if text is None:
                        continue
                    if record.ttft_s is None:
                        record.ttft_s = time.monotonic() - record.launched
                    parts.append(text)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # counted as failed, not fatal
            record.status, record.error = -1, repr(exc)
            return ""
        return "".join(parts)

    async def complete(self, engines: Sequence[str]) -> None:
        """Fill every record's engine, prompt and delivered hits from the engines' journals."""
        seen: dict[str, tuple[str, dict]] = {}
        for url in engines:
            async with self.session.get(url + REQUESTS, params={"limit": "100000"}) as resp:
                for row in (await resp.json())["requests"]:
                    seen[row["request_id"]] = (url, row)
        for record in self.records:
            if record.engine is None and record.rid in seen:
                url, row = seen[record.rid]
                record.engine = url
                record.prompt_tokens = int(row["prompt_tokens"])
                record.hit_tokens = int(row["gpu_hit_tokens"]) + int(row["cpu_hit_tokens"])


def _content(line: bytes) -> str | None:
    """The content of one SSE line of a chat stream (None: not a token chunk)."""
    if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
        return None
    chunk = orjson.loads(line[6:])
    for choice in chunk.get("choices") or ():
        text = (choice.get("delta") or {}).get("content")
        if text:
            return str(text)
    return None
