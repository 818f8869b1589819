"""Which blocks each engine really holds, per tier, as its KV events say (pure, bounded).

Fed by decoded events (`events.py`), one engine at a time, in stream order. Each (engine, tier)
keeps its stored blocks in arrival order, keyed by the engine's block hash, each with the
router keys of its tokens (`keys.py`: one key per `KV_BLOCK_SIZE` tokens, so a vLLM block is one
key and a 256-token LMCache chunk sixteen). `BlockRemoved` drops a block by its engine hash;
`AllBlocksCleared` empties the GPU tier (vLLM's `BlockPool.reset_prefix_cache`: the offload
tiers keep theirs); `clear` forgets an engine (a restart: a new process has an empty cache).

Bounded: a tier never holds more keys than its capacity in blocks (the engine's capacity in
tokens, which the components annotate, divided by `KV_BLOCK_SIZE`); past it, the oldest stored
blocks go first. vLLM reports its GPU evictions, so there the bound only guards against a
capacity set too low or a lost removal; LMCache's in-process CPU tier reports none, so there the
bound is the eviction (LMCache's CPU tier evicts least-recently-used; a block reused, i.e.
stored again, moves to the young end). Memory: one dict entry per engine block plus one per
router key, per engine and tier.

A store whose parent block is unknown (its event was lost, or the parent evicted from every
tier) cannot be keyed — its tokens' keys depend on the whole prefix — and is counted in
`orphans` instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from contracts.kv_events import KV_BLOCK_SIZE
from router.routing.kv.events import AllBlocksCleared, BlockHash, BlockRemoved, BlockStored, KvEvent, Tier
from router.routing.kv.keys import chain, root_key


class _Tier:
    """One engine tier: engine blocks oldest first, and the router keys they hold."""

    __slots__ = ("blocks", "capacity", "keys")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.blocks: OrderedDict[BlockHash, tuple[int, ...]] = OrderedDict()
        self.keys: dict[int, int] = {}  # router key -> how many of the tier's blocks hold it

    def store(self, engine_hash: BlockHash, keys: tuple[int, ...]) -> None:
        if engine_hash in self.blocks:
            self.blocks.move_to_end(engine_hash)
            return
        self.blocks[engine_hash] = keys
        for key in keys:
            self.keys[key] = self.keys.get(key, 0) + 1
        while len(self.keys) > self.capacity and self.blocks:
            self.remove(next(iter(self.blocks)))

    def remove(self, engine_hash: BlockHash) -> None:
        for key in self.blocks.pop(engine_hash, ()):
            left = self.keys[key] - 1
            if left:
                self.keys[key] = left
            else:
                del self.keys[key]

    def clear(self) -> None:
        self.blocks.clear()
        self.keys.clear()


@dataclass(frozen=True, slots=True)
class Residency:
    """How a prompt's leading blocks sit on one engine: the GPU's leading run, then the blocks the
    offload tiers continue it with, by the faster tier holding each (`ResidencyIndex.match`)."""

    blocks: Mapping[Tier, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Leading blocks the engine holds in some tier."""
        return sum(self.blocks.values())


_FASTEST_FIRST = (Tier.GPU, Tier.CPU, Tier.STORAGE)
"""Where a stored block's parent is looked for, after the event's own tier."""


def _leading(keys: Sequence[int], tiers: Sequence[_Tier]) -> int:
    """How many leading `keys` some of `tiers` holds, each."""
    for i, key in enumerate(keys):
        if not any(key in tier.keys for tier in tiers):
            return i
    return len(keys)


class ResidencyIndex:
    """Every engine's tiers, by engine name; see the module docstring."""

    def __init__(self) -> None:
        self._engines: dict[str, dict[Tier, _Tier]] = {}
        self.orphans: dict[str, int] = {}
        """Per engine, stores dropped for an unknown parent."""
        self._lmcache: set[str] = set()
        """Engines whose offload stores came from LMCache (`from_lmcache`): see `match`."""

    def add_engine(self, engine: str, capacity_tokens: Mapping[Tier, int]) -> None:
        """Track `engine` with these tier capacities (tokens; a tier absent or 0 holds nothing).
        Adding a known engine again resets it."""
        self._engines[engine] = {
            tier: _Tier(max(0, capacity_tokens.get(tier, 0)) // KV_BLOCK_SIZE) for tier in Tier
        }
        self.orphans[engine] = 0
        self._lmcache.discard(engine)

    def remove_engine(self, engine: str) -> None:
        """Forget `engine` entirely."""
        self._engines.pop(engine, None)
        self.orphans.pop(engine, None)
        self._lmcache.discard(engine)

    @property
    def engines(self) -> tuple[str, ...]:
        return tuple(self._engines)

    def clear(self, engine: str, tiers: Iterable[Tier] = tuple(Tier)) -> None:
        """Empty `engine`'s `tiers` (all by default: the engine restarted)."""
        for tier in tiers:
            self._engines[engine][tier].clear()

    def apply(self, engine: str, events: Iterable[KvEvent]) -> None:
        """Apply one batch's events, in order, to `engine` (which must have been added)."""
        tiers = self._engines[engine]
        for event in events:
            if isinstance(event, BlockStored):
                if event.from_lmcache:
                    self._lmcache.add(engine)
                self._store(engine, tiers, event)
            elif isinstance(event, BlockRemoved):
                for engine_hash in event.block_hashes:
                    tiers[event.tier].remove(engine_hash)
            elif isinstance(event, AllBlocksCleared):
                tiers[Tier.GPU].clear()

    def _store(self, engine: str, tiers: dict[Tier, _Tier], event: BlockStored) -> None:
        parent = self._parent_key(tiers, event)
        if parent is None:
            self.orphans[engine] += 1
            return
        tier, size = tiers[event.tier], event.block_size
        for i, engine_hash in enumerate(event.block_hashes):
            block = event.token_ids[i * size:(i + 1) * size]
            keys = chain(parent, block)
            tier.store(engine_hash, keys)
            if len(block) < size or len(block) % KV_BLOCK_SIZE or not keys:
                return  # a block short of tokens or of whole router blocks: nothing chains past it
            parent = keys[-1]

    @staticmethod
    def _parent_key(tiers: dict[Tier, _Tier], event: BlockStored) -> int | None:
        """The router key the stored chain continues: the root, or the parent block's last key
        (looked up in the event's tier first, then the others: vLLM offloads GPU blocks)."""
        if event.parent_block_hash is None:
            return root_key(event.lora_name)
        for tier in (event.tier, *(t for t in _FASTEST_FIRST if t is not event.tier)):
            keys = tiers[tier].blocks.get(event.parent_block_hash)
            if keys:
                return keys[-1]
        return None

    def match(self, engine: str, keys: Sequence[int]) -> Residency:
        """How `engine` would serve a prompt with these leading `keys`: vLLM's prefix cache hits
        the leading run of blocks on the GPU, then its KV connector supplies what follows, held
        in CPU or storage (vLLM's scheduler asks the connector for tokens past the GPU hit:
        `get_num_new_matched_tokens(request, num_computed_tokens)`); each offloaded block counts
        under the faster tier holding it. LMCache looks its chunks up from the prompt's start,
        so its part is its own leading run past the GPU's; vLLM's offloading connector looks up
        the blocks past the GPU hit (`_lookup_complete_chunks`: "how many tokens beyond
        num_locally_computed_tokens can be loaded", kv_connector/v1/offloading/scheduler.py),
        so its part continues the GPU run whether or not it holds the GPU's blocks too (an
        exclusive CPU tier, as the emulator's, does not)."""
        tiers = self._engines[engine]
        gpu = _leading(keys, (tiers[Tier.GPU],))
        offload_tiers = (tiers[Tier.CPU], tiers[Tier.STORAGE])
        if engine in self._lmcache:
            offload = _leading(keys, offload_tiers)
        else:
            offload = gpu + _leading(keys[gpu:], offload_tiers)
        counts = {Tier.GPU: gpu} if gpu else {}
        for key in keys[gpu:offload]:
            tier = Tier.CPU if key in tiers[Tier.CPU].keys else Tier.STORAGE
            counts[tier] = counts.get(tier, 0) + 1
        return Residency(counts)

    def size(self, engine: str, tier: Tier) -> int:
        """Router keys `engine` holds in `tier` (never above its capacity in blocks)."""
        return len(self._engines[engine][tier].keys)

    def capacity(self, engine: str, tier: Tier) -> int:
        """`engine`'s `tier` capacity in blocks."""
        return self._engines[engine][tier].capacity
