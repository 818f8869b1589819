"""Multi-round QA over many LoRA adapters in virtual time: the real routing policy over the
emulator's own engine model (`Scheduler` + `PrefixCache` + `LoraSlots`), joined by a
discrete-event clock instead of loopback HTTP, as `benchmarks.cache_pressure.sim` does.

Why virtual time and not processes (`benchmarks.chaos`): the claims are about placement (loads
and evictions per 1,000 requests) and about TTFT tails that a load of 25 ms or a disk read of
0.5 s moves; on a shared 2-core box a loopback run's wall-clock noise is larger than both, while
here every run of a seed gives the same figures, a 1,000-request run costs seconds, and the code
that decides is the code the stack runs: the router's policy (`select`, `on_complete`, engine
state scraped every `scrape_s` as the shell does, the LoRA gauge as vLLM 0.33 reports it: the
adapters with requests, under both labels, and `max_loras`) and the emulator's scheduler (vLLM's
`max_loras` skip, adapters applied to LRU slots each step with their load time). Not modelled:
network, router CPU, and the HTTP load endpoint (adapters are declared statically, as
stack_components/lora.py renders them; a declared adapter starts on disk).

Workload: `users` closed-loop users at a time, each with one adapter drawn from a Zipf law over
the adapters (rank k with weight 1 / k^zipf_s), a 1,000-token system prompt shared by all, a
2,000-token opening of its own, then `rounds` rounds of a 200-token question and a 100-token
answer, with exponential think time between rounds; a user who finishes is replaced by a new one.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchmarks.virtual_clock import VirtualClock
from emulator.cache import PrefixCache
from emulator.lora import CPU_LOAD_S, DISK_LOAD_S
from emulator.lora_slots import LoraSlots, SlotCounters
from emulator.scheduler import GenRequest, Scheduler, Step
from emulator.timing import Timing
from router.routing.base import EngineState, RouteRequest, RoutingPolicy
from router.routing.prompt import BYTES_PER_TOKEN, block_hashes, count_tokens

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
          "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform",
          "victor", "whiskey", "xray", "yankee", "zulu")


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One run's shape (times in modelled seconds at A100 speed)."""

    engines: int = 4
    max_loras: int = 4
    max_cpu_loras: int = 16
    adapters: int = 40
    zipf_s: float = 1.0
    users: int = 16  # concurrent users
    conversations: int = 400  # users in all (each `rounds` requests)
    rounds: int = 20
    think_s: float = 5.0  # mean think time between rounds
    system_tokens: int = 1000
    opening_tokens: int = 2000
    question_tokens: int = 200
    answer_tokens: int = 100
    gpu_cache_tokens: int = 400_000
    cpu_load_s: float = CPU_LOAD_S
    disk_load_s: float = DISK_LOAD_S
    scrape_s: float = 1.0


@dataclass(kw_only=True)
class Served:
    """One request."""

    user: int
    adapter: str
    round: int
    launch: float
    engine: int = -1
    first_token: float | None = None
    done: float | None = None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.launch


@dataclass
class _Engine:
    index: int
    id: str
    scheduler: Scheduler
    slots: LoraSlots
    ids: dict[str, int]  # adapter name -> lora id on this engine
    clock: float = 0.0
    stepping: bool = False
    open: dict[int, tuple[Served, RouteRequest, Callable[[float], None]]] = field(default_factory=dict)
    lora_open: dict[str, int] = field(default_factory=dict)  # adapter -> open requests (the gauge)


def _text(rng: random.Random, tokens: int) -> str:
    words, size = [], 0
    while size < tokens * BYTES_PER_TOKEN:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)


def zipf_weights(n: int, s: float) -> list[float]:
    """Popularity of ranks 1..n under a Zipf law with exponent `s`."""
    return [1.0 / (k ** s) for k in range(1, n + 1)]


class Simulation(VirtualClock):
    """The event loop of one run; `run()` returns every request sent."""

    def __init__(self, work: Workload, policy: RoutingPolicy, seed: int, *,
                 adapter_of: Callable[[random.Random], str] | None = None) -> None:
        super().__init__()
        self.work, self.policy = work, policy
        self._rng = random.Random(seed)
        self._keys = itertools.count(1)
        self.names = [f"adapter-{k:02d}" for k in range(1, work.adapters + 1)]
        weights = zipf_weights(work.adapters, work.zipf_s)
        self.adapter_of = adapter_of or (lambda rng: rng.choices(self.names, weights)[0])
        self.engines = [self._engine(i) for i in range(work.engines)]
        self.states = [EngineState(id=e.id, gpu_cache_tokens=work.gpu_cache_tokens) for e in self.engines]
        self._by_id = {e.id: e for e in self.engines}
        self._state = {s.id: s for s in self.states}
        policy.on_engines_changed(list(self._by_id))
        self.system = _text(random.Random("system"), work.system_tokens)
        self.served: list[Served] = []
        self._users = itertools.count()
        self._started = False

    def _engine(self, index: int) -> _Engine:
        w = self.work
        slots = LoraSlots(gpu_slots=w.max_loras, cpu_slots=w.max_cpu_loras, cpu_load_s=w.cpu_load_s,
                          disk_load_s=w.disk_load_s)
        scheduler = Scheduler(cache=PrefixCache(gpu_tokens=w.gpu_cache_tokens), timing=Timing(), lora=slots)
        ids = {name: i for i, name in enumerate((f"adapter-{k:02d}" for k in range(1, w.adapters + 1)), 1)}
        return _Engine(index, f"http://127.0.0.1:{8100 + index}", scheduler, slots, ids)

    @property
    def counters(self) -> SlotCounters:
        """Loads and evictions summed over the engines."""
        return sum_counters(self.engines)

    # --- the clock -----------------------------------------------------------------------
    def run(self, until: Callable[[], bool] | None = None) -> list[Served]:
        """Start the users (on the first call) and run until every conversation ended (or
        `until()` holds; a later call goes on from there)."""
        if not self._started:
            self._started = True
            for _ in range(min(self.work.users, self.work.conversations)):
                self._new_user(self._rng.uniform(0, self.work.think_s))
            self.at(self.work.scrape_s, self._scrape, background=True)
        self.run_events(until)
        return self.served

    def _scrape(self) -> None:
        for engine in self.engines:
            state = self._state[engine.id]
            state.waiting, state.running = engine.scheduler.num_waiting, engine.scheduler.num_running
            state.kv_usage = engine.scheduler.kv_usage
            active = frozenset(engine.lora_open)
            state.lora_running, state.lora_waiting, state.max_loras = active, active, self.work.max_loras
        if self.busy:
            self.at(self.now + self.work.scrape_s, self._scrape, background=True)

    # --- the client ----------------------------------------------------------------------
    def _new_user(self, delay: float) -> None:
        user = next(self._users)
        if user >= self.work.conversations:
            return
        rng = random.Random(f"user-{user}-{self._rng.random()}")
        adapter = self.adapter_of(self._rng)
        history = f"<|system|>\n{self.system}\n<|user|>\n{_text(rng, self.work.opening_tokens)}\n"
        self.at(self.now + delay, self._launch, user, adapter, history, 0, rng)

    def _launch(self, user: int, adapter: str, history: str, round_index: int, rng: random.Random) -> None:
        w = self.work
        if round_index >= w.rounds:
            self._new_user(rng.expovariate(1 / w.think_s))
            return
        prompt = history + f"<|user|>\n{_text(rng, w.question_tokens)}\n"

        def done(_: float) -> None:
            answered = prompt + f"<|assistant|>\n{_text(rng, w.answer_tokens)}\n"
            self.at(self.now + rng.expovariate(1 / w.think_s), self._launch, user, adapter, answered,
                    round_index + 1, rng)
        self.send(Served(user=user, adapter=adapter, round=round_index, launch=self.now), prompt, done)

    # --- the router and the engines ------------------------------------------------------
    def send(self, served: Served, text: str, on_done: Callable[[float], None]) -> None:
        """Route one request and submit it to the chosen engine."""
        route = RouteRequest(served.adapter, text.encode(), adapter=True)
        decision = self.policy.select(route, self.states)
        engine = self._by_id[decision.engine.id]
        served.engine = engine.index
        self.served.append(served)
        key = next(self._keys)
        decision.engine.in_flight += 1
        engine.open[key] = (served, route, on_done)
        engine.lora_open[served.adapter] = engine.lora_open.get(served.adapter, 0) + 1
        blocks = tuple(block_hashes(text, salt=served.adapter))
        request = GenRequest(key=key, prompt_tokens=max(1, count_tokens(text)), blocks=blocks,
                             max_tokens=self.work.answer_tokens, lora=engine.ids[served.adapter])
        engine.scheduler.submit(request, self.now)
        if not engine.stepping:
            self.plan(engine, self._deliver)

    def _deliver(self, engine: _Engine, step: Step) -> None:
        for emit in step.emits:
            served, route, on_done = engine.open[emit.key]
            if emit.first:
                served.first_token = self.now
            if emit.finish_reason is not None:
                del engine.open[emit.key]
                served.done = self.now
                left = engine.lora_open[served.adapter] - 1
                if left:
                    engine.lora_open[served.adapter] = left
                else:
                    del engine.lora_open[served.adapter]
                self._state[engine.id].in_flight -= 1
                self.policy.on_complete(route, engine.id, True)
                on_done(self.now)
        self.plan(engine, self._deliver)


def sum_counters(engines: Sequence[_Engine]) -> SlotCounters:
    """Loads and evictions summed over `engines`."""
    total = SlotCounters()
    for engine in engines:
        c = engine.slots.counters
        total.disk_loads += c.disk_loads
        total.gpu_loads += c.gpu_loads
        total.gpu_evictions += c.gpu_evictions
        total.cpu_evictions += c.cpu_evictions
    return total
