"""Where an engine's LoRA adapters' weights are: GPU slots and a CPU cache, both LRU (pure).

As vLLM 0.33's `LRUCacheWorkerLoRAManager` (vllm/lora/worker_manager.py) over an
`LRUCacheLoRAModelManager` (vllm/lora/model_manager.py): before each forward pass the worker
applies the batch's adapters (`_apply_adapters`); one missing from the CPU cache is read from disk
first (`_load_adapter`), evicting the least recently used registered adapter when the cache holds
`max_cpu_loras` (an evicted adapter leaves its GPU slot too); then it is activated in a GPU slot
(`activate_adapter`), evicting the least recently used active adapter when all `max_loras` slots
are taken, and touched in both LRUs. vLLM's scheduler never puts more than `max_loras` adapters
in one batch (`Scheduler.schedule`: a waiting request whose adapter would exceed it is skipped),
so the adapters evicted are never the batch's own: an adapter with running requests is touched
every step and stays. A runtime load (`add_lora`) goes through the same `add_adapter`.

The emulator touches the batch's resident adapters before loading its missing ones (vLLM walks
the batch in dict order, which can evict one of the batch's own when `max_cpu_loras` equals
`max_loras`: a corner left out). Costs are the settings' (`emulator.lora`); the counters are
what `benchmarks.lora` reports as loads and evictions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(slots=True)
class SlotCounters:
    """What the slots have done since start."""

    disk_loads: int = 0  # adapters read from disk into the CPU cache
    gpu_loads: int = 0  # adapters copied into a GPU slot (from the CPU cache)
    gpu_evictions: int = 0  # adapters pushed out of a GPU slot by another
    cpu_evictions: int = 0  # adapters pushed out of the CPU cache by another


class LoraSlots:
    """GPU slots and CPU cache of one engine's adapters, keyed by adapter id."""

    def __init__(self, *, gpu_slots: int, cpu_slots: int, cpu_load_s: float, disk_load_s: float) -> None:
        if not 1 <= gpu_slots <= cpu_slots:
            raise ValueError(f"need 1 <= gpu_slots ({gpu_slots}) <= cpu_slots ({cpu_slots})")
        self.gpu_slots = gpu_slots
        self.cpu_slots = cpu_slots
        self.cpu_load_s = cpu_load_s
        self.disk_load_s = disk_load_s
        self._gpu: OrderedDict[int, None] = OrderedDict()  # oldest first
        self._cpu: OrderedDict[int, None] = OrderedDict()
        self.counters = SlotCounters()

    @property
    def on_gpu(self) -> tuple[int, ...]:
        """Adapters in GPU slots, least recently used first."""
        return tuple(self._gpu)

    @property
    def on_cpu(self) -> tuple[int, ...]:
        """Adapters in the CPU cache, least recently used first."""
        return tuple(self._cpu)

    def cost(self, lora_id: int) -> float:
        """What activating `lora_id` now would cost, in seconds (0: it has a GPU slot)."""
        if lora_id in self._gpu:
            return 0.0
        return self.cpu_load_s + (0.0 if lora_id in self._cpu else self.disk_load_s)

    def apply(self, batch: Iterable[int]) -> float:
        """Make every adapter of a batch active (at most `gpu_slots` of them); returns the load time."""
        wanted = list(dict.fromkeys(batch))
        if len(wanted) > self.gpu_slots:
            raise ValueError(f"a batch of {len(wanted)} adapters exceeds the {self.gpu_slots} GPU slots")
        for lora_id in wanted:
            if lora_id in self._gpu:
                self._touch(lora_id)
        return sum(self.activate(i) for i in wanted if i not in self._gpu)

    def activate(self, lora_id: int) -> float:
        """Bring `lora_id` into a GPU slot (from the CPU cache, or disk first); returns the cost."""
        cost = self.cost(lora_id)
        if lora_id not in self._cpu:
            if len(self._cpu) >= self.cpu_slots:
                self._evict_cpu()
            self._cpu[lora_id] = None
            self.counters.disk_loads += 1
        if lora_id not in self._gpu:
            if len(self._gpu) >= self.gpu_slots:
                self._gpu.popitem(last=False)
                self.counters.gpu_evictions += 1
            self._gpu[lora_id] = None
            self.counters.gpu_loads += 1
        self._touch(lora_id)
        return cost

    def _touch(self, lora_id: int) -> None:
        self._gpu.move_to_end(lora_id)
        self._cpu.move_to_end(lora_id)

    def _evict_cpu(self) -> None:
        victim, _ = self._cpu.popitem(last=False)
        self.counters.cpu_evictions += 1
        if self._gpu.pop(victim, 0) is None:
            self.counters.gpu_evictions += 1

    def drop(self, lora_id: int) -> None:
        """Forget `lora_id`'s weights (an in-place reload reads them again)."""
        self._gpu.pop(lora_id, None)
        self._cpu.pop(lora_id, None)
