"""Continuous batching of one emulated engine: a pure state machine advanced by the shell.

`submit(request, now)` queues a request; `step(now)` plans one forward pass and returns its
duration and what it produced, or `None` when there is nothing to run. Like vLLM's V1
scheduler with chunked prefill: each step has a token budget (`max_num_batched_tokens`);
every decoding sequence takes one token of it, then partially prefilled requests continue,
then waiting requests are admitted first come first served while the batch has room
(`max_num_seqs`) and the GPU KV cache can hold their prompt plus `max_tokens`. Admission looks
the prompt up in the prefix cache; only the uncached tokens are prefilled, and CPU-tier hits
cost load time. A request emits its first token at the end of the step that finishes its
prefill, then one token per step. TTFT therefore = queueing + prefill steps (+ CPU load), and
decode steps lengthen as the batch grows. Pure: the caller passes `now`.

With LoRA (`lora`: the engine's `LoraSlots`) a request may name an adapter (`GenRequest.lora`),
and, as vLLM's scheduler does (`Scheduler.schedule`, vllm/v1/core/sched/scheduler.py), a waiting
request whose adapter is not among the running requests' is skipped, not blocking the queue,
while those already count `max_loras` adapters: it waits for a slot to free. Each step applies the
batch's adapters to the slots (`LoraSlots.apply`) and lasts their load time longer, as vLLM's
worker loads them before the forward pass; `stall` adds time to the next step (a runtime load
runs in the engine's loop between steps).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from emulator.cache import Lookup, PrefixCache
from emulator.errors import EmulatorError, require
from emulator.lora_slots import LoraSlots
from emulator.timing import Timing

FINISH_LENGTH = "length"
FINISH_STOP = "stop"


@dataclass(frozen=True, kw_only=True)
class GenRequest:
    """One generation request as the scheduler sees it."""

    key: int  # unique per engine, chosen by the caller
    prompt_tokens: int
    blocks: tuple[int, ...]
    max_tokens: int
    stop_after: int | None = None  # emit EOS ("stop") after this many tokens; None: never
    token_ids: tuple[int, ...] | None = None  # the prompt's token ids, when the cache tracks events
    lora: int | None = None  # the LoRA adapter's id (None: the base model)

    def __post_init__(self) -> None:
        require(self.prompt_tokens >= 1, "prompt_tokens", self.prompt_tokens, "must be >= 1")
        require(self.max_tokens >= 1, "max_tokens", self.max_tokens, "must be >= 1")
        require(self.stop_after is None or self.stop_after >= 1, "stop_after", self.stop_after,
                "must be None or >= 1")

    @property
    def output_tokens(self) -> int:
        """Tokens this request will generate."""
        return self.max_tokens if self.stop_after is None else min(self.max_tokens, self.stop_after)

    @property
    def finish_reason(self) -> str:
        """Why it will stop."""
        stops = self.stop_after is not None and self.stop_after <= self.max_tokens
        return FINISH_STOP if stops else FINISH_LENGTH


@dataclass(frozen=True)
class Emit:
    """One token produced for request `key` at the end of a step."""

    key: int
    first: bool
    finish_reason: str | None  # set on the request's last token


@dataclass(frozen=True)
class Admitted:
    """A request that left the waiting queue in this step, and where its prompt came from."""

    key: int
    lookup: Lookup
    queued_s: float


@dataclass(frozen=True, kw_only=True)
class Step:
    """One planned forward pass."""

    duration: float
    emits: tuple[Emit, ...]
    admitted: tuple[Admitted, ...]
    seqs: int
    prefill_tokens: int


@dataclass
class _Running:
    req: GenRequest
    to_prefill: int
    epoch: int = 0  # the cache's epoch at admission (`PrefixCache.release`)
    generated: int = 0

    @property
    def context(self) -> int:
        return self.req.prompt_tokens - self.to_prefill + self.generated


@dataclass
class _Plan:
    budget: int
    decoders: list[_Running]
    prefilled: list[_Running] = field(default_factory=list)
    completed: list[_Running] = field(default_factory=list)
    admitted: list[Admitted] = field(default_factory=list)
    prefill_tokens: int = 0
    loaded_tokens: int = 0


class Scheduler:
    """Waiting queue + running batch of one engine over a `PrefixCache`."""

    def __init__(self, *, cache: PrefixCache, timing: Timing, max_num_seqs: int = 256,
                 max_num_batched_tokens: int = 8192, lora: LoraSlots | None = None) -> None:
        require(max_num_seqs >= 1, "max_num_seqs", max_num_seqs, "must be >= 1")
        require(max_num_batched_tokens >= max_num_seqs + 1, "max_num_batched_tokens",
                max_num_batched_tokens, f"must exceed max_num_seqs ({max_num_seqs})")
        self.cache = cache
        self.timing = timing
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.capacity_tokens = cache.gpu_capacity_blocks * cache.block_tokens
        self._waiting: OrderedDict[int, tuple[GenRequest, float]] = OrderedDict()
        self._running: dict[int, _Running] = {}
        self._reserved = 0  # prompt + max_tokens of every running request
        self.lora = lora
        self._stall_s = 0.0  # added to the next step (a runtime adapter load)

    # --- state ---------------------------------------------------------------------------
    @property
    def num_running(self) -> int:
        """Requests in the running batch (prefilling or decoding)."""
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        """Requests queued for admission."""
        return len(self._waiting)

    @property
    def kv_usage(self) -> float:
        """Fraction of the GPU KV cache held by running requests' computed tokens (0..1)."""
        used = sum(r.context for r in self._running.values())
        return min(1.0, used / self.capacity_tokens)

    @property
    def idle(self) -> bool:
        """Whether there is no request at all."""
        return not self._running and not self._waiting

    # --- commands ------------------------------------------------------------------------
    def submit(self, req: GenRequest, now: float) -> None:
        """Queue a request that arrived at `now`."""
        if req.key in self._waiting or req.key in self._running:
            raise EmulatorError(f"request key {req.key} is already scheduled")
        if req.lora is not None and self.lora is None:
            raise EmulatorError(f"request {req.key} names a LoRA adapter but LoRA is not enabled")
        need = req.prompt_tokens + req.max_tokens
        require(need <= self.capacity_tokens, "prompt_tokens + max_tokens", need,
                f"must fit the GPU KV cache ({self.capacity_tokens} tokens)")
        self._waiting[req.key] = (req, now)

    def cancel(self, key: int) -> bool:
        """Drop a waiting or running request (client gone); True if it was still there."""
        if self._waiting.pop(key, None) is not None:
            return True
        running = self._running.pop(key, None)
        if running is None:
            return False
        self._retire(running)
        return True

    def step(self, now: float) -> Step | None:
        """Plan and apply one forward pass starting at `now`; None when there is no work."""
        decoders = [r for r in self._running.values() if r.to_prefill == 0]
        plan = _Plan(budget=self.max_num_batched_tokens - len(decoders), decoders=decoders)
        for running in list(self._running.values()):
            if running.to_prefill > 0:
                self._prefill(plan, running)
        self._admit(plan, now)
        if not decoders and not plan.prefilled:
            return None
        context = sum(r.context for r in decoders)
        duration = self.timing.step_seconds(
            seqs=len(decoders) + len(plan.prefilled), prefill_tokens=plan.prefill_tokens,
            context_tokens=context, loaded_tokens=plan.loaded_tokens)
        duration += (self._lora_load_s(decoders, plan.prefilled) + self._stall_s) * self.timing.time_scale
        self._stall_s = 0.0
        emits = [self._emit(r, first=False) for r in decoders]
        emits += [self._emit(r, first=True) for r in plan.completed]
        return Step(duration=duration, emits=tuple(emits), admitted=tuple(plan.admitted),
                    seqs=len(decoders) + len(plan.prefilled), prefill_tokens=plan.prefill_tokens)

    # --- internals -----------------------------------------------------------------------
    def _prefill(self, plan: _Plan, running: _Running) -> None:
        if plan.budget <= 0:
            return
        chunk = min(running.to_prefill, plan.budget)
        running.to_prefill -= chunk
        plan.budget -= chunk
        plan.prefill_tokens += chunk
        plan.prefilled.append(running)
        if running.to_prefill == 0:
            plan.completed.append(running)

    def stall(self, seconds: float) -> None:
        """Lengthen the next step by `seconds` (before `time_scale`), if there is one."""
        self._stall_s += seconds if not self.idle else 0.0

    @property
    def running_loras(self) -> set[int]:
        """Adapters of the running requests."""
        return {r.req.lora for r in self._running.values() if r.req.lora is not None}

    def _lora_load_s(self, decoders: list[_Running], prefilled: list[_Running]) -> float:
        if self.lora is None:
            return 0.0
        batch = [r.req.lora for r in (*decoders, *prefilled) if r.req.lora is not None]
        return self.lora.apply(batch) if batch else 0.0

    def _admit(self, plan: _Plan, now: float) -> None:
        loras = self.running_loras if self.lora is not None else set()
        for key, (req, arrival) in self._candidates():
            if plan.budget <= 0 or len(self._running) >= self.max_num_seqs:
                return
            if req.lora is not None and req.lora not in loras and len(loras) >= self._max_loras:
                continue  # no slot among the running adapters: skipped, the queue goes on
            need = req.prompt_tokens + req.max_tokens
            if self._reserved + need > self.capacity_tokens:
                return
            del self._waiting[key]
            self._reserved += need
            lookup = self.cache.admit(req.blocks, req.prompt_tokens, req.token_ids)
            running = _Running(req=req, to_prefill=lookup.miss_tokens, epoch=self.cache.epoch)
            self._running[key] = running
            plan.loaded_tokens += lookup.cpu_hit_tokens
            plan.admitted.append(Admitted(key=key, lookup=lookup, queued_s=max(0.0, now - arrival)))
            self._prefill(plan, running)
            if req.lora is not None:
                loras.add(req.lora)

    def _candidates(self) -> Iterator[tuple[int, tuple[GenRequest, float]]]:
        """Waiting requests in order: the head each time (admission removes it), or with LoRA a
        snapshot (skipped requests stay queued)."""
        if self.lora is None:
            while self._waiting:
                yield next(iter(self._waiting.items()))
        else:
            yield from list(self._waiting.items())

    @property
    def _max_loras(self) -> int:
        return self.lora.gpu_slots if self.lora is not None else 0

    def _emit(self, running: _Running, *, first: bool) -> Emit:
        running.generated += 1
        if running.generated < running.req.output_tokens:
            return Emit(running.req.key, first, None)
        del self._running[running.req.key]
        self._retire(running)
        return Emit(running.req.key, first, running.req.finish_reason)

    def _retire(self, running: _Running) -> None:
        self._reserved -= running.req.prompt_tokens + running.req.max_tokens
        self.cache.release(running.req.blocks, running.epoch)
