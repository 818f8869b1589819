"""Prefix cache of one emulated engine: a GPU tier and an optional LMCache-like CPU tier.

Blocks are `router.routing.prompt` blocks (16 tokens, chained hashes), so the router's prefix index
and this cache speak of the same blocks. The GPU tier holds `gpu_tokens // 16` blocks: the
blocks of running requests are pinned; the others sit in an LRU queue and are evicted first
when room is needed. An evicted block moves to the CPU tier when it has capacity (its own LRU,
dropping the oldest). Like vLLM, a finished request frees its blocks tail first, so a prefix
loses its end before its head.

A lookup at admission classifies the prompt as vLLM + LMCache would: the leading run of blocks
on the GPU (vLLM's prefix-cache hit), then the following run found in the CPU tier (loaded by
LMCache), then the rest computed. At most `prompt_tokens - 1` tokens can hit: vLLM always
computes the last token. Counters are exact token counts: `queried_tokens` (every admitted
prompt token, `vllm:prefix_cache_queries_total`), `gpu_hit_tokens` (`vllm:prefix_cache_hits_total`)
and `cpu_hit_tokens`. Pure: no I/O, no clock.

With `track_events=True` the cache also records what changed, as vLLM's block pool and its
offloading connector report it (`vllm/v1/core/block_pool.py`, `.../offloading/events.py` in
vLLM 0.33): a `Stored` per run of blocks newly on the GPU (computed, or loaded from the CPU
tier) after the evictions their room cost, one `Removed` per block that left a tier, `Stored`
on the CPU tier for each demoted block (its parent and tokens kept so the event describes
itself), and `Cleared` when the cache was reset; `take_events()` hands them over, oldest first,
like vLLM's `take_events`. Tracking keeps each cached block's parent and token ids (the prompt's
ids, passed to `admit`). `clear()` empties the GPU tier (vLLM's `reset_prefix_cache`) and by
default the CPU tier (an engine restart) at once: blocks still held by running requests stop
being cached (a later lookup misses them) but keep their room until released.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.kv_events import MEDIUM_CPU, MEDIUM_GPU
from emulator.errors import EmulatorError, require
from router.routing.prompt import BLOCK_TOKENS


@dataclass(frozen=True, slots=True)
class Stored:
    """A chain of blocks now held in `tier`, each block the parent of the next."""

    tier: str
    blocks: tuple[int, ...]
    parent: int | None
    """The block before the first one (None: the chain starts the prompt)."""
    token_ids: tuple[int, ...]
    """`block_tokens` token ids per block, in order."""


@dataclass(frozen=True, slots=True)
class Removed:
    """Blocks that left `tier`."""

    tier: str
    blocks: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Cleared:
    """Every block left every tier."""


CacheEvent = Stored | Removed | Cleared


@dataclass(frozen=True, kw_only=True)
class Lookup:
    """Where one prompt's tokens come from: GPU prefix cache, CPU tier, or computation."""

    gpu_hit_tokens: int
    cpu_hit_tokens: int
    miss_tokens: int

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt."""
        return self.gpu_hit_tokens + self.cpu_hit_tokens + self.miss_tokens


class PrefixCache:
    """Two-tier LRU block cache with pinning and exact token counters."""

    def __init__(self, *, gpu_tokens: int, cpu_tokens: int = 0, block_tokens: int = BLOCK_TOKENS,
                 track_events: bool = False) -> None:
        require(block_tokens > 0, "block_tokens", block_tokens, "must be > 0")
        require(gpu_tokens >= block_tokens, "gpu_cache_tokens", gpu_tokens, f"must be >= {block_tokens}")
        require(cpu_tokens >= 0, "cpu_cache_tokens", cpu_tokens, "must be >= 0")
        self.block_tokens = block_tokens
        self.gpu_capacity_blocks = gpu_tokens // block_tokens
        self.cpu_capacity_blocks = cpu_tokens // block_tokens
        self._pinned: dict[int, int] = {}  # block hash -> running requests holding it
        self._gpu_free: OrderedDict[int, None] = OrderedDict()  # unpinned GPU blocks, oldest first
        self._cpu: OrderedDict[int, None] = OrderedDict()  # CPU tier, oldest first
        self._orphans: dict[int, int] = {}  # blocks pinned before the last clear(): room, not cache
        self.epoch = 0
        """How many times the cache was cleared; `release` takes the epoch a request was admitted in."""
        self.track_events = track_events
        self._events: list[CacheEvent] = []
        self._meta: dict[int, tuple[int | None, tuple[int, ...]]] = {}  # block -> (parent, token ids)
        self.queried_tokens = 0
        self.gpu_hit_tokens = 0
        self.cpu_hit_tokens = 0

    # --- sizes ---------------------------------------------------------------------------
    @property
    def gpu_blocks(self) -> int:
        """Blocks held in the GPU tier (pinned or free, or pinned before a clear)."""
        return len(self._pinned) + len(self._gpu_free) + len(self._orphans)

    @property
    def pinned_blocks(self) -> int:
        """Distinct blocks held by running requests."""
        return len(self._pinned) + len(self._orphans)

    @property
    def cpu_blocks(self) -> int:
        """Blocks held in the CPU tier."""
        return len(self._cpu)

    def on_gpu(self, block: int) -> bool:
        """Whether `block` is in the GPU tier."""
        return block in self._pinned or block in self._gpu_free

    def on_cpu(self, block: int) -> bool:
        """Whether `block` is in the CPU tier."""
        return block in self._cpu

    # --- lookups -------------------------------------------------------------------------
    def peek(self, blocks: Sequence[int], prompt_tokens: int) -> Lookup:
        """Classify a prompt without changing the cache or its counters."""
        usable = blocks[: max(0, (prompt_tokens - 1) // self.block_tokens)]
        gpu = 0
        while gpu < len(usable) and self.on_gpu(usable[gpu]):
            gpu += 1
        cpu = gpu
        while cpu < len(usable) and usable[cpu] in self._cpu:
            cpu += 1
        gpu_tokens = gpu * self.block_tokens
        cpu_tokens = (cpu - gpu) * self.block_tokens
        return Lookup(gpu_hit_tokens=gpu_tokens, cpu_hit_tokens=cpu_tokens,
                      miss_tokens=prompt_tokens - gpu_tokens - cpu_tokens)

    def admit(self, blocks: Sequence[int], prompt_tokens: int,
              token_ids: Sequence[int] | None = None) -> Lookup:
        """Look a prompt up (counting it), then pin all its blocks in the GPU tier. With events
        tracked, `token_ids` are the prompt's token ids (block i is ids [i*16, (i+1)*16))."""
        require(len(blocks) * self.block_tokens <= prompt_tokens, "blocks", len(blocks),
                f"must cover at most the prompt's {prompt_tokens} tokens")
        need = len(blocks) * self.block_tokens
        require(not self.track_events or (token_ids is not None and len(token_ids) >= need), "token_ids",
                None if token_ids is None else len(token_ids),
                f"must give the blocks' {need} token ids when events are tracked")
        result = self.peek(blocks, prompt_tokens)
        self.queried_tokens += prompt_tokens
        self.gpu_hit_tokens += result.gpu_hit_tokens
        self.cpu_hit_tokens += result.cpu_hit_tokens
        new: list[int] = []  # indices of the blocks that were not on the GPU
        for index, block in enumerate(blocks):
            if not self.on_gpu(block):
                new.append(index)
            self._pin(block)
        if self.track_events and new:
            assert token_ids is not None
            self._record_stored(blocks, new, token_ids)
        return result

    def release(self, blocks: Sequence[int], epoch: int | None = None) -> None:
        """Unpin a finished request's blocks; they stay cached, the tail oldest. `epoch`: the
        cache's `epoch` when the request was admitted (None: the current one); blocks pinned
        before a `clear()` just give their room back."""
        if epoch is not None and epoch != self.epoch:
            self._release_orphans(blocks)
            return
        for block in reversed(blocks):
            held = self._pinned.get(block, 0)
            if held > 1:
                self._pinned[block] = held - 1
            elif held == 1:
                del self._pinned[block]
                self._gpu_free[block] = None

    def clear(self, *, cpu: bool = True) -> None:
        """Forget every cached GPU block and, with `cpu`, the CPU tier too. Records `Cleared`
        for the GPU (vLLM's `reset_prefix_cache`, which leaves offloaded copies alone), not one
        removal per block; a cleared CPU tier is recorded by nothing (only a restart clears it,
        and a restarted engine starts a new stream)."""
        for block, held in self._pinned.items():
            self._orphans[block] = self._orphans.get(block, 0) + held
        for block in (*self._pinned, *self._gpu_free):
            self._meta.pop(block, None)
        self._pinned.clear()
        self._gpu_free.clear()
        if cpu:
            self._cpu.clear()
            self._meta.clear()
        self.epoch += 1
        if self.track_events:
            self._events.append(Cleared())

    def take_events(self) -> list[CacheEvent]:
        """The changes recorded since the last call, oldest first (empty unless tracking)."""
        events, self._events = self._events, []
        return events

    # --- internals -----------------------------------------------------------------------
    def _pin(self, block: int) -> None:
        if block in self._pinned:
            self._pinned[block] += 1
            return
        if block in self._gpu_free:
            del self._gpu_free[block]
        else:
            if self._cpu.pop(block, 0) is None:  # promoted: the CPU copy is gone (this cache is exclusive)
                self._removed(MEDIUM_CPU, block)
            self._make_room()
        self._pinned[block] = 1

    def _make_room(self) -> None:
        """Free one GPU slot if the tier is full, demoting the oldest free block to the CPU."""
        if self.gpu_blocks < self.gpu_capacity_blocks:
            return
        if not self._gpu_free:
            raise EmulatorError(
                f"GPU tier over-committed: {self.pinned_blocks} pinned blocks fill all "
                f"{self.gpu_capacity_blocks}; the scheduler must not admit more")
        victim, _ = self._gpu_free.popitem(last=False)
        self._removed(MEDIUM_GPU, victim)
        self._demote(victim)

    def _demote(self, block: int) -> None:
        if self.cpu_capacity_blocks == 0:
            self._meta.pop(block, None)
            return
        self._cpu[block] = None
        self._cpu.move_to_end(block)
        if self.track_events:
            parent, tokens = self._meta[block]
            self._events.append(Stored(MEDIUM_CPU, (block,), parent, tokens))
        while len(self._cpu) > self.cpu_capacity_blocks:
            dropped, _ = self._cpu.popitem(last=False)
            self._removed(MEDIUM_CPU, dropped)
            self._meta.pop(dropped, None)

    def _removed(self, tier: str, block: int) -> None:
        if self.track_events:
            self._events.append(Removed(tier, (block,)))

    def _release_orphans(self, blocks: Sequence[int]) -> None:
        for block in blocks:
            held = self._orphans.get(block, 0)
            if held > 1:
                self._orphans[block] = held - 1
            elif held == 1:
                del self._orphans[block]

    def _record_stored(self, blocks: Sequence[int], new: list[int], token_ids: Sequence[int]) -> None:
        """One `Stored` per run of consecutive new blocks, and each new block's parent and tokens."""
        size = self.block_tokens
        run: list[int] = []
        for index in new:
            parent = blocks[index - 1] if index else None
            tokens = tuple(token_ids[index * size:(index + 1) * size])
            self._meta[blocks[index]] = (parent, tokens)
            if run and run[-1] != index - 1:
                self._emit_run(blocks, run)
                run = []
            run.append(index)
        self._emit_run(blocks, run)

    def _emit_run(self, blocks: Sequence[int], run: list[int]) -> None:
        chain = tuple(blocks[i] for i in run)
        tokens = tuple(t for block in chain for t in self._meta[block][1])
        self._events.append(Stored(MEDIUM_GPU, chain, self._meta[chain[0]][0], tokens))
