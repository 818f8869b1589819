"""What each engine has been sent, as chained block hashes, bounded like the engine's KV cache.

Per engine the index keeps an LRU of block hashes (`router.routing.prompt.block_hashes`) whose
capacity in blocks mirrors the engine's real cache (the larger of its GPU and write-through
LMCache CPU tiers, `router.routing.cost.distinct_tokens`), so the router
never believes in cache the engine has evicted and its memory stays bounded. One shared dict
maps each block hash to a bitmask of the engines holding it, so a lookup for every engine at
once costs a few dict probes rather than a loop over engines and blocks.

The index also keeps the *tips*: the last block of every prompt it was sent, for as long as
some engine holds that block. A prompt that contains a tip extends a prompt sent before (its
own earlier round, a retry); one whose match contains no tip continues differently from
everything the engines were sent past some point, i.e. it forks off another conversation's
prefix (`PrefixPolicy` places such a prompt as a new conversation).

Invariant (what makes the lookups exact): in each engine's LRU a block is always more recent
than every block that descends from it (`insert` touches a prompt's blocks last-to-first),
and eviction takes the oldest first, so an engine's blocks are closed under "prefix of". The
blocks of a prompt an engine holds are therefore a leading run, its length is found by binary
search, and the engines' masks along a prompt only ever lose bits. Matches are defined as
"the longest run of present blocks from the start"; the tests check that against a
brute-force model.

Pure: no I/O, no clock, no locks. Hash collisions (64-bit) are ignored.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from itertools import islice, repeat


class _Engine:
    """One engine's LRU (oldest first) and its bit in the shared owner masks."""

    __slots__ = ("bit", "capacity", "lru", "slot")

    def __init__(self, slot: int, capacity: int) -> None:
        self.slot = slot
        self.bit = 1 << slot
        self.capacity = capacity
        self.lru: OrderedDict[int, None] = OrderedDict()


def _leading_run(lru: OrderedDict[int, None], hashes: Sequence[int]) -> int:
    """Length of the leading run of `hashes` present in `lru` (binary search: prefix-closed)."""
    lo, hi = 0, len(hashes)
    while lo < hi:
        mid = (lo + hi) >> 1
        if hashes[mid] in lru:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _bits(mask: int) -> Iterable[int]:
    """Positions of the set bits of `mask`, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class PrefixIndex:
    """Per-engine bounded LRU of block hashes plus a shared hash -> engines bitmask."""

    def __init__(self) -> None:
        self._owners: dict[int, int] = {}  # block hash -> bitmask of engines holding it
        self._engines: dict[str, _Engine] = {}
        self._slot_ids: list[str | None] = []  # bit position -> engine id (None: free)
        self._tips: set[int] = set()  # last block hash of every prompt sent, while held

    # --- engines and capacity -------------------------------------------------------------
    def set_capacity(self, engine_id: str, blocks: int) -> None:
        """Track `engine_id` with room for `blocks` blocks (adding it if new); evicts down to it."""
        if blocks < 0:
            raise ValueError(f"prefix index capacity for {engine_id!r} must be >= 0 (got {blocks})")
        engine = self._engines.get(engine_id)
        if engine is None:
            engine = self._engines[engine_id] = _Engine(self._free_slot(engine_id), blocks)
            return
        engine.capacity = blocks
        self._evict(engine, len(engine.lru) - blocks)

    def remove_engine(self, engine_id: str) -> None:
        """Forget an engine and everything it was sent (no-op when unknown)."""
        engine = self._engines.pop(engine_id, None)
        if engine is None:
            return
        self._evict(engine, len(engine.lru))
        self._slot_ids[engine.slot] = None

    def retain(self, engine_ids: Iterable[str]) -> None:
        """Forget every engine not in `engine_ids`."""
        keep = set(engine_ids)
        for engine_id in [e for e in self._engines if e not in keep]:
            self.remove_engine(engine_id)

    def engine_ids(self) -> list[str]:
        """The tracked engines, in the order they were added."""
        return list(self._engines)

    def capacity(self, engine_id: str) -> int | None:
        """The engine's capacity in blocks, or None when it is not tracked."""
        engine = self._engines.get(engine_id)
        return None if engine is None else engine.capacity

    def size(self, engine_id: str) -> int:
        """Blocks the index believes `engine_id` holds (0 when not tracked)."""
        engine = self._engines.get(engine_id)
        return 0 if engine is None else len(engine.lru)

    def free_blocks(self, engine_ids: Iterable[str]) -> dict[str, int]:
        """Blocks each engine has room for before the index evicts (0 for untracked engines)."""
        engines = self._engines
        return {i: (e.capacity - len(e.lru)) if (e := engines.get(i)) is not None else 0 for i in engine_ids}

    def distinct_blocks(self) -> int:
        """Distinct block hashes held by any engine."""
        return len(self._owners)

    def blocks_of(self, engine_id: str) -> list[int]:
        """The engine's block hashes, least recently used first (for tests and debugging)."""
        engine = self._engines.get(engine_id)
        return [] if engine is None else list(engine.lru)

    # --- lookups ---------------------------------------------------------------------------
    def match(self, engine_id: str, hashes: Sequence[int]) -> int:
        """Blocks of the longest run of `hashes`, from the start, that `engine_id` holds."""
        engine = self._engines.get(engine_id)
        return 0 if engine is None else _leading_run(engine.lru, hashes)

    def match_all(self, hashes: Sequence[int]) -> dict[str, int]:
        """`match` for every tracked engine at once; engines with no match are left out."""
        get, n = self._owners.get, len(hashes)
        out: dict[str, int] = {}
        mask = get(hashes[0], 0) if n else 0
        start = 0
        while mask:
            end = _mask_run_end(get, hashes, start, mask)
            following = get(hashes[end], 0) & mask if end < n else 0
            for slot in _bits(mask & ~following):
                engine_id = self._slot_ids[slot]
                if engine_id is not None:  # a set bit always names a tracked engine
                    out[engine_id] = end
            mask, start = following, end
        return out

    def deepest_tip(self, hashes: Sequence[int], start: int, end: int) -> int:
        """Depth (blocks, from the start) of the deepest tip among `hashes[start:end]`: the
        longest prompt sent before that this one extends, if it is longer than `start`; 0 if none."""
        tips, end = self._tips, min(end, len(hashes))
        if end > start and hashes[end - 1] in tips:  # a conversation's next round: at once
            return end
        for depth in range(end - 1, max(start, 0), -1):
            if hashes[depth - 1] in tips:
                return depth
        return 0

    def is_tip(self, block: int) -> bool:
        """Whether some prompt sent ended at `block` and an engine still holds it."""
        return block in self._tips

    def tip_count(self) -> int:
        """Tips known (at most the distinct blocks held)."""
        return len(self._tips)

    # --- updates ---------------------------------------------------------------------------
    def insert(self, engine_id: str, hashes: Sequence[int]) -> int | None:
        """Record that `engine_id` was sent a prompt with these blocks: its leading blocks
        (as many as fit) become the most recent, the first block most recent of all. Returns
        the prompt's tip (its last block kept), None when nothing was kept."""
        engine = self._engines.get(engine_id)
        if engine is None:
            raise KeyError(f"prefix index: unknown engine {engine_id!r}; call set_capacity first")
        hashes = hashes[: engine.capacity]
        tip = hashes[-1] if hashes else None
        if tip is not None:
            self._tips.add(tip)
        lru = engine.lru
        held = _leading_run(lru, hashes)
        new = hashes[held:]
        if new:
            lru.update(zip(reversed(new), repeat(None)))
            owners, bit = self._owners, engine.bit
            owners.update(zip(new, map(bit.__or__, map(owners.get, new, repeat(0))), strict=True))
        if held:
            deque(map(lru.move_to_end, reversed(hashes[:held])), maxlen=0)
        self._evict(engine, len(lru) - engine.capacity)
        return tip

    # --- internals -------------------------------------------------------------------------
    def _free_slot(self, engine_id: str) -> int:
        for slot, holder in enumerate(self._slot_ids):
            if holder is None:
                self._slot_ids[slot] = engine_id
                return slot
        self._slot_ids.append(engine_id)
        return len(self._slot_ids) - 1

    def _evict(self, engine: _Engine, count: int) -> None:
        """Drop the engine's `count` least recently used blocks."""
        if count <= 0:
            return
        lru, owners, bit = engine.lru, self._owners, engine.bit
        victims = list(islice(lru, count))
        deque(map(lru.__delitem__, victims), maxlen=0)
        others = ~bit
        masks = list(map(owners.pop, victims, repeat(0)))
        shared = [(h, m & others) for h, m in zip(victims, masks, strict=True) if m & others]
        if shared:
            owners.update(shared)
        # blocks no engine holds any more are no tips either
        self._tips.difference_update([h for h, m in zip(victims, masks, strict=True) if not m & others]
                                     if shared else victims)


def _mask_run_end(get: Callable[[int, int], int], hashes: Sequence[int], start: int, mask: int) -> int:
    """First index after `start` whose owners no longer include all of `mask` (binary search)."""
    lo, hi = start + 1, len(hashes)
    while lo < hi:
        mid = (lo + hi) >> 1
        if (get(hashes[mid], 0) & mask) == mask:
            lo = mid + 1
        else:
            hi = mid
    return lo
