"""One point, one policy, one seed, in virtual time: the real policy, the emulator's own engine
model and `bench`'s client, joined by a discrete-event clock instead of loopback HTTP.

What runs is the code the live stack runs, minus the sockets:

- the client: `bench.schedule` pacing (steady-state ramp, closed-loop users; or, with the
  point's `arrivals` "independent", `arrivals`' independent users) and
  `bench.workload` conversations, the warm-up `bench.warmup` sends (each initial user's
  previous round, `max_tokens` 1, 8 at a time), answers appended as the emulator words them
  (`emulator.generation.answer_text` of the rendered conversation, `ignore_eos` as `bench` sends);
- the router: the policy's `select` and `on_complete` over `EngineState`s kept as the router's
  shell keeps them (`in_flight` exact, `waiting`/`running`/`kv_usage` scraped every `scrape_s`,
  1 s as `router.settings`' `metrics_interval_s`), prompts rendered as the proxy renders them;
  with `events` (`kv_events.scoring: events`), the request also carries its token ids (as the
  shell gets them from the engine's `/tokenize`: `emulator.tokenize.encode`) and the `KvView`
  the subscriber keeps: each engine's cache changes of a step, encoded as vLLM's KV-event
  payload (`emulator.kv_wire`, vLLM's offloading connector for the CPU tier) and decoded as
  the router decodes them, reach every replica's view `event_delay_s` after the step that
  produced them (one view for all replicas: each subscribes to every engine and gets the same
  batches at the same time);
- each engine: `emulator.scheduler.Scheduler` over `emulator.cache.PrefixCache`, stepped as
  `emulator.engine.EngineRuntime._run` steps it (a step planned at the end of the last one,
  or when a request wakes an idle engine; tokens delivered at the step's end).

Times are the emulator's modelled seconds at time scale 1 (A100 speed), so TTFT is exact and
the same on every run of a seed: no wall-clock noise from a shared box, and a 60 s window
costs about a second. Network and router CPU (well under a millisecond per request,
benchmarks/RESULTS.md) are not modelled.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.schedule import Pacing, UserStart, initial_users, joining_users, next_launch
from bench.workload import Conversation, Message, Workload
from benchmarks.cache_pressure import arrivals
from benchmarks.cache_pressure.plan import Point
from benchmarks.virtual_clock import VirtualClock
from emulator.cache import PrefixCache
from emulator.generation import answer_text, generation_context
from emulator.kv_wire import BatchEncoder
from emulator.scheduler import GenRequest, Scheduler, Step
from emulator.timing import Timing
from emulator.tokenize import encode, whole_token_ids
from router.routing.base import EngineState, RouteRequest, RoutingPolicy
from router.routing.kv.events import KvEventBatch, Tier, decode_payload
from router.routing.kv.feed import EngineFeed, KvView
from router.routing.kv.residency import ResidencyIndex
from router.routing.prompt import block_hashes, count_tokens, render_chat

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
WARMUP_CONCURRENCY = 8  # bench.config.BenchConfig.warmup_concurrency
EVENT_DELAY_S = 0.005
"""From the end of an engine step to its events applied in the router's view: vLLM publishes a
step's batch when the step ends (`EngineCore` takes the scheduler's events after each step), the
router's subscriber applies it on receipt; loopback ZMQ plus decoding is well under this."""


@dataclass(kw_only=True)
class Served:
    """One request: where it went, what the router believed cached, what the engine had."""

    user: str
    round: int
    measured: bool  # False: the warm-up
    launch: float
    engine: int = -1
    outcome: str = ""
    believed_tokens: int = 0  # Decision.matched_tokens
    prompt_tokens: int = 0
    gpu_hit_tokens: int = 0
    cpu_hit_tokens: int = 0
    queued_s: float = 0.0
    first_token: float | None = None
    done: float | None = None
    error: str | None = None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.launch

    @property
    def hit_tokens(self) -> int:
        return self.gpu_hit_tokens + self.cpu_hit_tokens


@dataclass
class _Engine:
    index: int
    id: str
    scheduler: Scheduler
    cache: PrefixCache
    clock: float = 0.0
    seq: int = 0  # the next KV-event batch's sequence number
    stepping: bool = False
    open: dict[int, tuple[Served, RouteRequest, _Router, Callable[[float], None]]] = field(
        default_factory=dict)


class _Router:
    """One router replica: its policy and its own view of the engines (in-flight counts of its
    own requests, scraped queues)."""

    def __init__(self, policy: RoutingPolicy, point: Point, ids: Sequence[str]) -> None:
        self.policy = policy
        self.states = [EngineState(id=i, gpu_cache_tokens=point.gpu_cache_tokens,
                                   cpu_cache_tokens=point.router_cpu_tokens) for i in ids]
        self.by_id = {s.id: s for s in self.states}
        policy.on_engines_changed(list(ids))


class Simulation(VirtualClock):
    """The event loop of one run; `run()` returns every request it sent."""

    def __init__(self, point: Point, policies: Sequence[RoutingPolicy], seed: int, *, scrape_s: float = 1.0,
                 observe: Callable[[Simulation, Served], None] | None = None, events: bool = False,
                 event_delay_s: float = EVENT_DELAY_S) -> None:
        super().__init__()
        self.point, self.seed, self.scrape_s, self.observe = point, seed, scrape_s, observe
        self.event_delay_s = event_delay_s
        self._keys = itertools.count(1)
        self.engines = [self._engine(i, events) for i in range(point.engines)]
        self.kv = self._view() if events else None
        self.kv_lags: list[float] = []  # per batch applied: seconds from its step's end
        self._encoder = BatchEncoder(int_hashes=True)
        self._by_id = {e.id: e for e in self.engines}
        self.routers = [_Router(p, point, list(self._by_id)) for p in policies]
        self._pick = random.Random(f"{seed}:replica")  # each request to a random replica (a Service)
        self.workload = Workload(point.workload(seed))
        self.pacing = Pacing(users=point.users, rounds=point.rounds, qps=point.qps,
                             duration_s=point.duration_s)
        self.served: list[Served] = []
        self._t0 = 0.0
        self._independent = point.arrivals == "independent"
        # independent users: one random stream per user, so every policy sees the same arrivals
        self._arrive: dict[int, random.Random] = {}

    def _engine(self, index: int, events: bool) -> _Engine:
        p = self.point
        cache = PrefixCache(gpu_tokens=p.gpu_cache_tokens, cpu_tokens=p.cpu_cache_tokens, track_events=events)
        return _Engine(index, f"http://127.0.0.1:{8100 + index}",
                       Scheduler(cache=cache, timing=Timing()), cache)

    def _view(self) -> KvView:
        """The subscriber's view: every engine followed with its tiers' capacities, live from an
        empty replay (the engines start empty, as a router starting with them finds them)."""
        index, feeds = ResidencyIndex(), {}
        for e in self.engines:
            index.add_engine(e.id, {Tier.GPU: self.point.gpu_cache_tokens,
                                    Tier.CPU: self.point.cpu_cache_tokens})
            feed = feeds[e.id] = EngineFeed(e.id, index, stale_after_s=float("inf"), now=0.0)
            feed.connected()
            feed.replayed(feed.sync(), [])
        return KvView(index, feeds)

    def _publish(self, engine: _Engine) -> None:
        """The step's cache changes as one KV-event batch, applied `event_delay_s` from now."""
        payload = self._encoder.payload(self.now, engine.cache.take_events())
        if payload is not None and self.kv is not None:
            batch = decode_payload(payload, seq=engine.seq)
            engine.seq += 1
            self.at(self.now + self.event_delay_s, self._apply, engine, batch, background=True)

    def _apply(self, engine: _Engine, batch: KvEventBatch) -> None:
        """The subscriber receives a batch: applied to the view in stream order."""
        assert self.kv is not None
        self.kv.feeds[engine.id].live(batch)
        self.kv_lags.append(self.now - batch.ts)

    # --- the clock -----------------------------------------------------------------------
    def run(self) -> list[Served]:
        """Warm-up, then the point's window and drain; every request sent."""
        self._warm_up()
        self.at(self.scrape_s, self._scrape, background=True)
        self.run_events()
        return self.served

    def _scrape(self) -> None:
        for router in self.routers:
            for e in self.engines:
                state = router.by_id[e.id]
                state.waiting, state.running = e.scheduler.num_waiting, e.scheduler.num_running
                state.kv_usage = e.scheduler.kv_usage
        if self.busy:
            self.at(self.now + self.scrape_s, self._scrape, background=True)

    # --- the client ----------------------------------------------------------------------
    def _users(self) -> list[tuple[UserStart, Conversation]]:
        if self._independent:
            starts = [UserStart(index=slot, slot=slot, first_launch=at, first_round=r)
                      for slot in range(self.pacing.users)
                      for at, r in [arrivals.first_launch(self._stream(slot), self.pacing)]]
        else:
            starts = [*initial_users(self.pacing), *joining_users(self.pacing)]
        return [(s, self._conversation(s.index, s.first_round)) for s in starts]

    def _conversation(self, index: int, first_round: int) -> Conversation:
        """User `index`'s conversation (bench names users after its run: ids differ per run)."""
        return self.workload.conversation(f"s{self.seed}-u{index}", first_round)

    def _stream(self, index: int) -> random.Random:
        """User `index`'s think times (independent arrivals)."""
        stream = self._arrive.get(index)
        if stream is None:
            stream = self._arrive[index] = random.Random(f"{self.seed}:arrivals:{index}")
        return stream

    def _warm_up(self) -> None:
        users = self._users()
        sends = [(c, m) for s, c in users if s.index < self.pacing.users
                 and (m := c.previous_request()) is not None]
        queue = iter(sends)

        def next_send(_: float = 0.0) -> None:
            item = next(queue, None)
            if item is not None:
                conv, messages = item
                self._send(Served(user=conv.user_id, round=-1, measured=False, launch=self.now),
                           messages, 1, next_send)
        for _ in range(WARMUP_CONCURRENCY):
            self.at(0.0, next_send)
        # the warm-up alone, to its last request's end (no scrapes yet: nothing is stale); KV-event
        # batches still in flight then are applied when due, during the run
        self.run_events(until=lambda: not self.busy)
        self._t0 = self.now
        for start, conv in users:
            self.at(self._t0 + start.first_launch, self._launch, conv, start.first_round, start.first_launch,
                    start.index)

    def _launch(self, conv: Conversation, round_index: int, due: float, index: int = 0) -> None:
        if round_index >= self.pacing.rounds or due >= self.pacing.duration_s:
            return
        served = Served(user=conv.user_id, round=round_index, measured=True, launch=self.now)

        asked = conv.ask(round_index)

        def done(finished: float) -> None:
            context = generation_context({"messages": list(asked)})
            conv.answer(answer_text(context, conv.max_tokens(round_index)))
            if not self._independent:
                after = next_launch(self.pacing, served.launch - self._t0, finished - self._t0)
                self.at(self._t0 + after, self._launch, conv, round_index + 1, after)
                return
            t0, users = self._t0, self.pacing.users
            after = arrivals.next_launch(self._stream(index), self.pacing, served.launch - t0, finished - t0)
            if round_index + 1 < self.pacing.rounds:
                self.at(t0 + after, self._launch, conv, round_index + 1, after, index)
            else:  # the slot's next user (numbered slot + users x generation) takes over
                joining = index + users
                self.at(t0 + after, self._launch, self._conversation(joining, 0), 0, after, joining)
        self._send(served, asked, conv.max_tokens(round_index), done)

    # --- the router and the engines ------------------------------------------------------
    def _send(self, served: Served, messages: tuple[Message, ...], max_tokens: int,
              on_done: Callable[[float], None]) -> None:
        text = render_chat(messages)
        kv = self.kv
        route = (RouteRequest(MODEL, text.encode(), served.user) if kv is None else
                 RouteRequest(MODEL, text.encode(), served.user, token_ids=tuple(encode(text)), kv=kv,
                              now=self.now))
        routers = self.routers
        router = routers[self._pick.randrange(len(routers))] if len(routers) > 1 else routers[0]
        decision = router.policy.select(route, router.states)
        engine = self._by_id[decision.engine.id]
        served.engine, served.outcome = engine.index, decision.outcome
        served.believed_tokens = decision.matched_tokens
        served.prompt_tokens = max(1, count_tokens(text))
        self.served.append(served)
        if self.observe is not None:
            self.observe(self, served)
        if served.prompt_tokens + max_tokens > engine.scheduler.capacity_tokens:  # the engine's 400
            served.error, served.done = "context length", self.now
            router.policy.on_complete(route, engine.id, True)
            on_done(self.now)
            return
        key = next(self._keys)
        decision.engine.in_flight += 1
        engine.open[key] = (served, route, router, on_done)
        request = GenRequest(key=key, prompt_tokens=served.prompt_tokens, blocks=tuple(block_hashes(text)),
                             max_tokens=max_tokens,
                             token_ids=whole_token_ids(text) if kv is not None else None)
        engine.scheduler.submit(request, self.now)
        if not engine.stepping:
            self.plan(engine, self._deliver)

    def _deliver(self, engine: _Engine, step: Step) -> None:
        for admitted in step.admitted:
            served = engine.open[admitted.key][0]
            served.gpu_hit_tokens = admitted.lookup.gpu_hit_tokens
            served.cpu_hit_tokens = admitted.lookup.cpu_hit_tokens
            served.queued_s = admitted.queued_s
        for emit in step.emits:
            served, route, router, on_done = engine.open[emit.key]
            if emit.first:
                served.first_token = self.now
            if emit.finish_reason is not None:
                del engine.open[emit.key]
                served.done = self.now
                router.by_id[engine.id].in_flight -= 1
                router.policy.on_complete(route, engine.id, True)
                on_done(self.now)
        if self.kv is not None:
            self._publish(engine)
        self.plan(engine, self._deliver)
