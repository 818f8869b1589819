"""Where a new conversation of a LoRA adapter is placed when adapters outnumber GPU slots (pure).

What an engine does with adapters (vLLM 0.33, `vllm/lora/worker_manager.py`
`LRUCacheWorkerLoRAManager`, `vllm/v1/core/sched/scheduler.py`): it holds `--max-loras` adapters in
GPU slots, least recently used first out; a request for an adapter outside them is loaded into a
slot (from its CPU cache, or disk) when a batch needs it, evicting the least recently used one —
but never one the running batch uses: while the running requests already use `max_loras`
adapters, a request for another waits. So sending an adapter where it is resident costs nothing;
where a slot is free, one load; elsewhere, a load and an eviction of an adapter that will be
wanted again (thrash), or a wait when every resident adapter is busy.

What the router knows, per engine (`LoraView`): its slots (`EngineState.max_loras` from the
scraped `vllm:lora_requests_info`; before its first report the most any engine reported, else
vLLM's default 1), the adapters the gauge says have requests (running or waiting: vLLM 0.33 puts
each under both labels), and the adapters this router sent it recently — an LRU of up to `slots`
names with this router's open requests each (`LoraPlacement.record` / `done`; an end moves it to
the young end, as the engine touched it in every step up to then), with the tick of its last use.
Resident = the gauge's ∪ this LRU; busy (must not be evicted) = the gauge's ∪ those with open requests here.

The policy (`LoraPlacement.place`), over the candidates the caller offers (the engines with room
under its bounded-load limit, `roomy`) and all healthy engines:

1. the least-loaded candidate that has the adapter resident: an adapter's traffic stays on the
   engines already holding it until they are all over the load bound (then it spreads: step 2);
2. else the least-loaded candidate with a free slot (resident < slots): one load, no eviction;
3. else, among the candidates whose least-recently-used resident adapter is idle (one load, one
   eviction of an adapter nobody is using now), the adapter's first rendezvous home over all
   engines, or its second when the second's LRU adapter has been idle at least `colder` (2) times
   as long (counted in requests this router recorded or saw end since that adapter's last use:
   policies read no clock), else the least-loaded of them. Why: an LRU adapter idle only a few
   requests is mostly a conversation in think time that will come back and reload it, evicting
   another (measured: half to two thirds of the loads before this step were such reloads); the
   older of two victims is the likelier finished one (Belady's choice approximated by age), and
   keeping each adapter on its two homes keeps it in their CPU LoRA caches (`--max-cpu-loras`;
   spreading it to any engine tripled the disk reads and broke the TTFT p99 target);
4. else (every slot everywhere busy: nothing can be placed without waiting or thrashing) the
   least-loaded engine holding the adapter even over the bound, or the least-loaded candidate,
   where the request waits for a slot (vLLM evicts nothing busy).

"Least-loaded" is a band, not a strict minimum: the engines within `spread` requests of the
lowest load (in-flight plus waiting), and within the band the rendezvous hash (xxh3) of the
adapter's name over engine ids picks one — so router replicas, which see the same scraped state
but not each other's in-flight counts, mostly agree, and an adapter's first engine is a pure
function of its name and the engine set.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import xxhash

from router.routing.base import EngineState
from router.routing.policies._hashing import load

DEFAULT_SLOTS = 1  # vLLM's --max-loras default, for an engine that has not reported its own
_hash = xxhash.xxh3_64_intdigest


@dataclass(frozen=True, slots=True)
class LoraView:
    """What the router believes of one engine's adapters."""

    slots: int
    resident: frozenset[str]
    busy: frozenset[str]
    lru: str | None  # the least recently used resident adapter this router knows of (None: none)
    idle: int = 0  # how long `lru` has been idle, in requests this router saw since its last use

    def free(self) -> bool:
        """Whether a slot is free (an adapter could be loaded without an eviction)."""
        return len(self.resident) < self.slots

    def evictable(self) -> bool:
        """Whether loading another adapter would evict only an idle one."""
        return self.lru is not None and self.lru not in self.busy


def default_slots(engines: Sequence[EngineState]) -> int:
    """The slots assumed for an engine that has not reported its own: the most any reported."""
    return max((e.max_loras for e in engines), default=0) or DEFAULT_SLOTS


def active(engine: EngineState, adapter: str) -> bool:
    """Whether `adapter` has requests running or waiting on `engine` (its gauge)."""
    return adapter in engine.lora_running or adapter in engine.lora_waiting


class LoraPlacement:
    """This router's memory of the adapters it sent each engine, and the placement policy."""

    def __init__(self, spread: int = 2, homes: int = 2, colder: float = 2.0) -> None:
        self.spread, self.homes, self.colder = spread, homes, colder
        self._sent: dict[str, OrderedDict[str, int]] = {}  # engine -> adapter -> open requests (LRU)
        self._used: dict[str, dict[str, int]] = {}  # engine -> adapter -> tick of its last send or end
        self._tick = 0  # requests recorded and ended: the policy's clock (policies read no clock)

    def view(self, engine: EngineState, default_slots: int = DEFAULT_SLOTS) -> LoraView:
        """The engine's slots, resident and busy adapters, and its LRU one."""
        slots = engine.max_loras or default_slots
        gauge = engine.lora_running | engine.lora_waiting
        sent = self._sent.get(engine.id, OrderedDict())
        busy = gauge | {a for a, n in sent.items() if n > 0}
        # the engine's LRU: the oldest adapter sent here that the gauge shows no request for
        # (those it shows were used in its latest batch), else one of the gauge's (busy)
        lru = next((a for a in sent if a not in gauge), None) or next(iter(sorted(gauge)), None)
        used = self._used.get(engine.id, {})
        idle = self._tick - used.get(lru, 0) if lru is not None else 0
        return LoraView(slots=slots, resident=frozenset(gauge | sent.keys()), busy=frozenset(busy), lru=lru,
                        idle=idle)

    def place(self, adapter: str, roomy: Sequence[EngineState],
              engines: Sequence[EngineState]) -> EngineState:
        """The engine for a new conversation of `adapter` (the module docstring's steps 1-4);
        `roomy`: the candidates under the caller's load bound (non-empty), `engines`: all."""
        default = default_slots(engines)
        views = {e.id: self.view(e, default) for e in engines}
        holders = [e for e in roomy if adapter in views[e.id].resident]
        for pool in (holders, [e for e in roomy if views[e.id].free()]):
            if pool:
                return self._least_loaded(pool, adapter)
        idle = [e for e in roomy if views[e.id].evictable()]
        if idle:
            return self._evicting(adapter, idle, engines, views)
        held = [e for e in engines if adapter in views[e.id].resident]
        return self._least_loaded(held or list(roomy), adapter)

    def _evicting(self, adapter: str, idle: Sequence[EngineState], engines: Sequence[EngineState],
                  views: dict[str, LoraView]) -> EngineState:
        """Step 3: of the adapter's two rendezvous homes (over all engines) among `idle`, the first,
        unless the second's LRU adapter has been idle at least twice as long; with neither among
        them, the least-loaded of `idle`."""
        key = _hash(adapter.encode())
        ranked = sorted(engines, key=lambda e: _hash(e.id.encode(), key), reverse=True)[:self.homes]
        ids = {e.id for e in idle}
        homes = [e for e in ranked if e.id in ids]
        if not homes:
            return self._least_loaded(idle, adapter)
        if len(homes) > 1 and views[homes[1].id].idle >= self.colder * views[homes[0].id].idle:
            return homes[1]
        return homes[0]

    def _least_loaded(self, pool: Sequence[EngineState], adapter: str) -> EngineState:
        """Within `spread` of the lowest load, the rendezvous winner for `adapter`."""
        floor = min(load(e) for e in pool)
        band = [e for e in pool if load(e) <= floor + self.spread]
        key = _hash(adapter.encode())
        return max(band, key=lambda e: _hash(e.id.encode(), key))

    def record(self, engine: EngineState, adapter: str, default_slots: int = DEFAULT_SLOTS) -> None:
        """This router sent `engine` a request for `adapter` (now its most recently used)."""
        sent = self._sent.setdefault(engine.id, OrderedDict())
        sent[adapter] = sent.get(adapter, 0) + 1
        sent.move_to_end(adapter)
        self._tick += 1
        used = self._used.setdefault(engine.id, {})
        used[adapter] = self._tick
        slots = engine.max_loras or default_slots
        while len(sent) > slots:  # the engine has evicted the oldest by now: forget it, unless open
            oldest = next((a for a, n in sent.items() if n == 0), None)
            if oldest is None:
                break
            del sent[oldest]
            used.pop(oldest, None)

    def done(self, engine_id: str, adapter: str) -> None:
        """A request for `adapter` that this router sent `engine_id` ended."""
        sent = self._sent.get(engine_id)
        if sent is not None and sent.get(adapter, 0) > 0:
            sent[adapter] -= 1
            sent.move_to_end(adapter)  # the engine touched it in every step up to this end
            self._tick += 1
            self._used.setdefault(engine_id, {})[adapter] = self._tick

    def retain(self, engine_ids: Collection[str]) -> None:
        """Forget engines that are gone."""
        self._sent = {i: s for i, s in self._sent.items() if i in engine_ids}
        self._used = {i: u for i, u in self._used.items() if i in engine_ids}
