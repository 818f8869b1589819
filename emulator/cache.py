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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from emulator.errors import EmulatorError, require
from router.routing.prompt import BLOCK_TOKENS


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

    def __init__(self, *, gpu_tokens: int, cpu_tokens: int = 0, block_tokens: int = BLOCK_TOKENS) -> None:
        require(block_tokens > 0, "block_tokens", block_tokens, "must be > 0")
        require(gpu_tokens >= block_tokens, "gpu_cache_tokens", gpu_tokens, f"must be >= {block_tokens}")
        require(cpu_tokens >= 0, "cpu_cache_tokens", cpu_tokens, "must be >= 0")
        self.block_tokens = block_tokens
        self.gpu_capacity_blocks = gpu_tokens // block_tokens
        self.cpu_capacity_blocks = cpu_tokens // block_tokens
        self._pinned: dict[int, int] = {}  # block hash -> running requests holding it
        self._gpu_free: OrderedDict[int, None] = OrderedDict()  # unpinned GPU blocks, oldest first
        self._cpu: OrderedDict[int, None] = OrderedDict()  # CPU tier, oldest first
        self.queried_tokens = 0
        self.gpu_hit_tokens = 0
        self.cpu_hit_tokens = 0

    # --- sizes ---------------------------------------------------------------------------
    @property
    def gpu_blocks(self) -> int:
        """Blocks held in the GPU tier (pinned or free)."""
        return len(self._pinned) + len(self._gpu_free)

    @property
    def pinned_blocks(self) -> int:
        """Distinct blocks held by running requests."""
        return len(self._pinned)

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

    def admit(self, blocks: Sequence[int], prompt_tokens: int) -> Lookup:
        """Look a prompt up (counting it), then pin all its blocks in the GPU tier."""
        require(len(blocks) * self.block_tokens <= prompt_tokens, "blocks", len(blocks),
                f"must cover at most the prompt's {prompt_tokens} tokens")
        result = self.peek(blocks, prompt_tokens)
        self.queried_tokens += prompt_tokens
        self.gpu_hit_tokens += result.gpu_hit_tokens
        self.cpu_hit_tokens += result.cpu_hit_tokens
        for block in blocks:
            self._pin(block)
        return result

    def release(self, blocks: Sequence[int]) -> None:
        """Unpin a finished request's blocks; they stay cached, the tail oldest."""
        for block in reversed(blocks):
            held = self._pinned.get(block, 0)
            if held > 1:
                self._pinned[block] = held - 1
            elif held == 1:
                del self._pinned[block]
                self._gpu_free[block] = None

    # --- internals -----------------------------------------------------------------------
    def _pin(self, block: int) -> None:
        if block in self._pinned:
            self._pinned[block] += 1
            return
        if block in self._gpu_free:
            del self._gpu_free[block]
        else:
            self._cpu.pop(block, None)
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
        self._demote(victim)

    def _demote(self, block: int) -> None:
        if self.cpu_capacity_blocks == 0:
            return
        self._cpu[block] = None
        self._cpu.move_to_end(block)
        while len(self._cpu) > self.cpu_capacity_blocks:
            self._cpu.popitem(last=False)
