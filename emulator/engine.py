"""The running side of one emulated engine: drives the pure scheduler with the loop's clock.

`EngineRuntime` owns one `PrefixCache`, `Scheduler`, `EngineMetrics` and `Journal`. A single
asyncio task per engine plans a step, sleeps until the step's end on a model clock (so small
steps do not drift: a late wake-up is caught up by the next step, and the lateness is kept as
`max_lag_s` and `late_steps`, the sign that the emulator is a bottleneck), then hands each produced
token to the request's `Channel`, which wakes the HTTP handler streaming that request.

Shutdown follows vLLM 0.33's engine core (`EngineCore._handle_shutdown`, `_reject_add_in_shutdown`
in vllm/v1/engine/core.py): once `drain()` is called every new request is aborted on arrival,
and `abort_all()` ends every open one with `finish_reason: "abort"`; the server
(`emulator.server`) decides when, from `--shutdown-timeout`.

With `kv_events` configured the cache tracks its changes and each step that changed it ends
with one KV-event batch handed to `kv_sink` (the server's `KvPublisher`), as vLLM's scheduler
publishes one batch per step with events (`Scheduler.update_from_output`); `clear_kv` is the
`kv_clear` fault. A prompt's token ids are `emulator.tokenize.whole_token_ids` of its text.

With `lora` configured the engine serves adapters (`emulator.lora.AdapterRegistry`, the static
`--lora-modules` loaded at start), keeps their weights in `LoraSlots` (the scheduler applies them
per step) and keys an adapter's prefix-cache blocks by its name and path. `lora_series` is
vLLM's `vllm:lora_requests_info` gauge: after every step, as vLLM's output handler records
`LoRARequestStates` (vllm/v1/metrics/stats.py, loggers.py), the series labelled with the adapters
that have requests (in the order they got one) is set to the wall clock. vLLM 0.33 puts every such
adapter under both labels (`update_scheduler_stats` fills both dicts for each adapter, counts of
0 included, and the labels are their keys): so does the emulator. vLLM keeps every label set it
ever set; the emulator the newest `LORA_SERIES_KEPT`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
from typing import Any, Protocol

from emulator import gpu
from emulator.cache import Lookup, PrefixCache
from emulator.config import EngineConfig
from emulator.faults import KV_CLEAR_RESTART, Faults
from emulator.journal import (
    STATUS_ABORTED,
    STATUS_CANCELLED,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_RUNNING,
    Journal,
    RequestRecord,
)
from emulator.kv_wire import BatchEncoder
from emulator.lora import Adapter, AdapterRegistry, path_found
from emulator.lora_slots import LoraSlots
from emulator.metrics import EngineMetrics, Gauges
from emulator.scheduler import Emit, GenRequest, Scheduler, Step
from emulator.tokenize import whole_token_ids
from emulator.wire import FINISH_ABORT, ParsedRequest
from router.routing.prompt import block_hashes

LATE_STEP_S = 0.002  # a step that ends this much after its planned end counts as late
LORA_SERIES_KEPT = 64


class KvSink(Protocol):
    """Where an engine's KV-event batches go (`emulator.kv_publisher.KvPublisher`)."""

    def publish(self, payload: bytes) -> int: ...

    def restart(self) -> None: ...


class Channel:
    """Tokens produced for one request, awaited by its HTTP handler."""

    __slots__ = ("key", "record", "tokens", "finish_reason", "last_token_at", "adapter", "_waiter")

    def __init__(self, key: int, record: RequestRecord, adapter: str | None = None) -> None:
        self.key = key
        self.adapter = adapter  # the LoRA adapter it counts for, until it ends
        self.record = record
        self.tokens = 0
        self.finish_reason: str | None = None
        self.last_token_at = 0.0
        self._waiter: asyncio.Future[None] | None = None

    def push(self, finish_reason: str | None) -> None:
        """One more token (the last one when `finish_reason` is set)."""
        self.tokens += 1
        self.finish_reason = finish_reason
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self) -> bool:
        """End the request without another token (`finish_reason` "abort"); False if it had ended."""
        if self.finish_reason is not None:
            return False
        self.finish_reason = FINISH_ABORT
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def wait_beyond(self, seen: int) -> int:
        """Wait until more than `seen` tokens exist or the request ended; returns the token count."""
        while self.tokens <= seen and self.finish_reason is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.tokens


class EngineRuntime:
    """One emulated engine's model, clock and per-request channels."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.faults: Faults = config.faults
        kv = config.kv_events
        self.cache = PrefixCache(gpu_tokens=config.gpu_cache_tokens, cpu_tokens=config.cpu_cache_tokens,
                                 track_events=kv is not None)
        self.kv_encoder = None if kv is None else BatchEncoder(wire=kv.wire, int_hashes=kv.int_hashes,
                                                               cpu_style=kv.cpu_style,
                                                               block_size=self.cache.block_tokens)
        self.kv_sink: KvSink | None = None
        self.adapters, self.lora_slots = self._lora(config)
        self.scheduler = Scheduler(cache=self.cache, timing=config.timing, max_num_seqs=config.max_num_seqs,
                                   max_num_batched_tokens=config.max_num_batched_tokens, lora=self.lora_slots)
        self._lora_open: dict[str, int] = {}  # adapter -> its open requests, in the order they got one
        self.lora_series: dict[str, float] = {}  # comma-joined adapters -> when last set (wall clock)
        self.metrics = EngineMetrics(config.model)
        self.journal = Journal(config.journal_size)
        self.requests = 0
        self.steps = 0
        self.max_lag_s = 0.0
        self.late_steps = 0
        self._rng = random.Random(config.seed)
        self._sampling = random.Random()  # salts of sampled (temperature > 0, no seed) requests
        self._keys = itertools.count(1)
        self._channels: dict[int, Channel] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._epoch_offset = 0.0
        self.draining = False  # shutting down: new requests are aborted on arrival

    @staticmethod
    def _lora(config: EngineConfig) -> tuple[AdapterRegistry | None, LoraSlots | None]:
        """The served adapters and their slots, the static `--lora-modules` loaded (I/O: their
        paths must exist, as vLLM's start fails on one it cannot load)."""
        lora = config.lora
        if lora is None:
            return None, None
        registry = AdapterRegistry(config.model, lora.max_lora_rank)
        slots = LoraSlots(gpu_slots=lora.max_loras, cpu_slots=lora.cpu_slots, cpu_load_s=lora.cpu_load_s,
                          disk_load_s=lora.disk_load_s)
        for module in lora.modules:
            adapter = registry.load(module.name, module.path, found=path_found(module.path),
                                    base_model_name=module.base_model_name)
            slots.activate(adapter.lora_id)
        return registry, slots

    def load_adapter(self, name: str, path: str, *, found: bool, load_inplace: bool = False,
                     rank: int | None = None) -> float:
        """`POST /v1/load_lora_adapter`: serve `name` and bring it into a GPU slot as vLLM's
        `add_lora` does; returns the load time (before `time_scale`), which also stalls the next
        step. Raises `WireError` with vLLM's answer."""
        assert self.adapters is not None and self.lora_slots is not None
        adapter = self.adapters.load(name, path, found=found, load_inplace=load_inplace, rank=rank)
        if load_inplace:
            self.lora_slots.drop(adapter.lora_id)
        cost = self.lora_slots.activate(adapter.lora_id)
        self.scheduler.stall(cost)
        return cost

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the step loop on the running event loop."""
        loop = asyncio.get_running_loop()
        self._epoch_offset = time.time() - loop.time()
        self._task = loop.create_task(self._run(), name=f"emulated-engine-{self.config.model}")

    async def stop(self) -> None:
        """Stop the step loop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wall(self, loop_time: float) -> float:
        """Epoch seconds of a loop-clock instant."""
        return loop_time + self._epoch_offset

    # --- requests ------------------------------------------------------------------------
    def salt(self, salt: int | None) -> int:
        """A request's sampling salt: its own, or a fresh random one (sampling without a seed)."""
        return self._sampling.getrandbits(64) if salt is None else salt

    def created(self) -> int:
        """The `created` field of an answer: the config's, else the wall clock's second."""
        return self.config.created if self.config.created is not None else int(time.time())

    def draw_failure(self) -> bool:
        """Whether the next request fails under the current faults."""
        return self.faults.fail_rate > 0 and self.faults.fails(self._rng.random())

    def cached(self, parsed: ParsedRequest) -> Lookup:
        """What the cache would serve `parsed` from now, without changing the cache."""
        return self.cache.peek(_blocks(parsed), parsed.prompt_tokens)

    def submit(self, parsed: ParsedRequest, request_id: str) -> Channel:
        """Queue a generation request; its tokens arrive on the returned channel."""
        now = asyncio.get_running_loop().time()
        key = next(self._keys)
        stop_after = None if parsed.ignore_eos else self.config.stop_after_tokens
        token_ids = None if self.kv_encoder is None else whole_token_ids(parsed.prompt)
        adapter: Adapter | None = parsed.adapter
        req = GenRequest(key=key, prompt_tokens=parsed.prompt_tokens,
                         blocks=_blocks(parsed), max_tokens=parsed.max_tokens,
                         stop_after=stop_after, token_ids=token_ids,
                         lora=adapter.lora_id if adapter is not None else None)
        record = RequestRecord(request_id=request_id, prompt_tokens=parsed.prompt_tokens,
                               max_tokens=parsed.max_tokens, stream=parsed.stream, arrival=self.wall(now))
        self.scheduler.submit(req, now)
        channel = Channel(key, record, adapter.name if adapter is not None else None)
        if channel.adapter is not None:
            self._lora_open[channel.adapter] = self._lora_open.get(channel.adapter, 0) + 1
        channel.last_token_at = now
        self._channels[key] = channel
        self.journal.add(record)
        self.requests += 1
        if self.draining:
            self.scheduler.cancel(key)
            channel.abort()
            record.status = STATUS_ABORTED
        self._wake.set()
        return channel

    @property
    def open_requests(self) -> int:
        """Requests whose handler still holds their channel."""
        return len(self._channels)

    def drain(self) -> None:
        """Begin shutting down: every later request is aborted on arrival."""
        self.draining = True

    def abort_all(self) -> int:
        """End every open request with `finish_reason` "abort"; returns how many."""
        aborted = 0
        for channel in list(self._channels.values()):
            if channel.abort():
                self._lora_done(channel)
                self.scheduler.cancel(channel.key)
                channel.record.status = STATUS_ABORTED
                channel.record.finish = self.wall(asyncio.get_running_loop().time())
                aborted += 1
        return aborted

    def close(self, channel: Channel, *, failed: bool = False) -> None:
        """The handler is done with `channel`: drop the request if it is still scheduled."""
        self._channels.pop(channel.key, None)
        self._lora_done(channel)
        record = channel.record
        if channel.finish_reason == FINISH_ABORT and record.status == STATUS_ABORTED:
            return
        if channel.finish_reason is not None and not failed:
            record.status = STATUS_OK
            return
        self.scheduler.cancel(channel.key)
        if record.status == STATUS_RUNNING:
            record.status = STATUS_FAILED if failed else STATUS_CANCELLED
            record.finish = self.wall(asyncio.get_running_loop().time())

    def _lora_done(self, channel: Channel) -> None:
        """`channel`'s request no longer counts for its adapter (once)."""
        name, channel.adapter = channel.adapter, None
        if name is None:
            return
        left = self._lora_open.get(name, 0) - 1
        if left > 0:
            self._lora_open[name] = left
        else:
            self._lora_open.pop(name, None)

    def _record_lora(self, wall: float) -> None:
        """Set the gauge series of the adapters with requests now to `wall` (vLLM, per step)."""
        if self.adapters is None:
            return
        series = self.lora_series
        label = ",".join(self._lora_open)
        series.pop(label, None)
        series[label] = wall
        if len(series) > LORA_SERIES_KEPT:
            del series[next(iter(series))]

    def cancel_all(self) -> None:
        """Drop every scheduled request (the engine died)."""
        for channel in list(self._channels.values()):
            self.close(channel, failed=True)

    # --- step loop -----------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        clock = loop.time()
        while True:
            if self.scheduler.idle:
                self._wake.clear()
                await self._wake.wait()
            clock = max(clock, loop.time()) if self.scheduler.num_running == 0 else clock
            step = self.scheduler.step(clock)
            if step is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            clock += step.duration
            await self._sleep_until(loop, clock)
            self._deliver(step, loop.time())

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - loop.time()))  # sleep(0) when behind: yield, catch up
        late = loop.time() - deadline
        if late > 0:
            self.max_lag_s = max(self.max_lag_s, late)
            self.late_steps += late > LATE_STEP_S

    def _deliver(self, step: Step, now: float) -> None:
        self.steps += 1
        wall = self.wall(now)
        for admitted in step.admitted:
            self._on_admitted(admitted.key, admitted.lookup, wall)
        for emit in step.emits:
            channel = self._channels.get(emit.key)
            if channel is not None and channel.finish_reason is None:  # not if aborted meanwhile
                self._on_token(channel, emit, now)
        self.flush_kv_events(wall)
        self._record_lora(wall)

    # --- KV events -----------------------------------------------------------------------
    def flush_kv_events(self, wall: float) -> None:
        """Publish the cache's changes since the last flush as one batch (none if unchanged)."""
        if self.kv_encoder is None:
            return
        payload = self.kv_encoder.payload(wall, self.cache.take_events())
        if payload is not None and self.kv_sink is not None:
            self.kv_sink.publish(payload)

    def clear_kv(self, how: str) -> None:
        """Empty the cache: "reset" the GPU tier, publishing `AllBlocksCleared`; "restart" both
        tiers, starting a new stream."""
        wall = time.time()
        self.flush_kv_events(wall)
        self.cache.clear(cpu=how == KV_CLEAR_RESTART)
        if how == KV_CLEAR_RESTART:
            self.cache.take_events()
            if self.kv_sink is not None:
                self.kv_sink.restart()
        self.flush_kv_events(wall)

    def _on_admitted(self, key: int, lookup: Lookup, wall: float) -> None:
        self.metrics.prompt_tokens += lookup.prompt_tokens
        channel = self._channels.get(key)
        if channel is not None:
            record = channel.record
            record.admitted = wall
            self.metrics.queue_time.observe(wall - record.arrival)
            record.gpu_hit_tokens = lookup.gpu_hit_tokens
            record.cpu_hit_tokens = lookup.cpu_hit_tokens

    def _on_token(self, channel: Channel, emit: Emit, now: float) -> None:
        record = channel.record
        metrics = self.metrics
        metrics.generation_tokens += 1
        if emit.first:
            record.first_token = self.wall(now)
            metrics.ttft.observe(record.first_token - record.arrival)
        else:
            metrics.itl.observe(now - channel.last_token_at)
        channel.last_token_at = now
        record.output_tokens += 1
        if emit.finish_reason is not None:
            record.finish = self.wall(now)
            metrics.e2e.observe(record.finish - record.arrival)
            self._lora_done(channel)
        channel.push(emit.finish_reason)

    # --- views ---------------------------------------------------------------------------
    def metrics_text(self) -> str:
        """The `/metrics` body."""
        gauges = Gauges(running=self.scheduler.num_running, waiting=self.scheduler.num_waiting,
                        kv_usage=self.scheduler.kv_usage)
        cache = self.cache
        lora = None if self.config.lora is None else (self.config.lora.max_loras, self.lora_series)
        return self.metrics.render(gauges, queried_tokens=cache.queried_tokens,
                                   hit_tokens=cache.gpu_hit_tokens, cpu_hit_tokens=cache.cpu_hit_tokens,
                                   lora=lora)

    def gpu_metrics_text(self) -> str:
        """The emulated dcgm-exporter body for this engine's GPU, from its running batch."""
        spec = gpu.GpuSpec()
        reading = gpu.sample(spec, running=self.scheduler.num_running, last_xid=self.faults.xid)
        return gpu.render(spec, reading)

    def stats(self) -> dict[str, Any]:
        """The `/emulator/stats` body."""
        cache = self.cache
        return {
            "model": self.config.model, "requests": self.requests,
            "running": self.scheduler.num_running, "waiting": self.scheduler.num_waiting,
            "kv_cache_usage": self.scheduler.kv_usage, "queried_tokens": cache.queried_tokens,
            "gpu_hit_tokens": cache.gpu_hit_tokens, "cpu_hit_tokens": cache.cpu_hit_tokens,
            "gpu_cached_tokens": cache.gpu_blocks * cache.block_tokens,
            "cpu_cached_tokens": cache.cpu_blocks * cache.block_tokens,
            "prompt_tokens": self.metrics.prompt_tokens, "generation_tokens": self.metrics.generation_tokens,
            "steps": self.steps, "late_steps": self.late_steps, "max_lag_s": self.max_lag_s,
            "faults": self.faults.to_dict(), "lora": self._lora_stats(),
        }

    def _lora_stats(self) -> dict[str, Any] | None:
        """Adapters with requests, the slots' contents (by name) and their load/eviction counters."""
        if self.adapters is None or self.lora_slots is None:
            return None
        slots, names = self.lora_slots, {a.lora_id: a.name for a in self.adapters.adapters.values()}
        return {"open": dict(self._lora_open), "gpu": [names.get(i, str(i)) for i in slots.on_gpu],
                "cpu": [names.get(i, str(i)) for i in slots.on_cpu], **dataclasses.asdict(slots.counters)}


def _blocks(parsed: ParsedRequest) -> tuple[int, ...]:
    """The prompt's block hashes, salted by its adapter's cache salt (a LoRA's blocks are its own)."""
    adapter = parsed.adapter
    return tuple(block_hashes(parsed.prompt, salt=adapter.cache_salt if adapter is not None else None))
