"""The residency index holds what the engines' KV events say they hold, per tier, within each
tier's capacity: stores chain by parent, removals and clears take blocks away, a prompt's match
walks its leading blocks by the fastest tier holding each."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.routing.kv.events import AllBlocksCleared, BlockRemoved, BlockStored, Tier
from router.routing.kv.keys import block_keys, chain, root_key
from router.routing.kv.residency import Residency, ResidencyIndex

GPU, CPU, STORAGE = Tier.GPU, Tier.CPU, Tier.STORAGE
PROMPT = list(range(1000, 1000 + 16 * 20))  # 20 blocks
KEYS = block_keys(PROMPT)


def _index(gpu: int = 16 * 1000, cpu: int = 16 * 1000, storage: int = 0) -> ResidencyIndex:
    index = ResidencyIndex()
    index.add_engine("e1", {GPU: gpu, CPU: cpu, STORAGE: storage})
    return index


def _gpu_store(first: int, count: int, parent: bool = True) -> BlockStored:
    """vLLM's GPU store of blocks first..first+count-1 of PROMPT (engine hashes b'g<i>')."""
    return BlockStored(
        block_hashes=tuple(f"g{i}".encode() for i in range(first, first + count)),
        parent_block_hash=f"g{first - 1}".encode() if first and parent else None,
        token_ids=tuple(PROMPT[16 * first:16 * (first + count)]), block_size=16, tier=GPU)


def _lmcache_store(chunk: int, tokens: list[int] = PROMPT) -> BlockStored:
    """LMCache's republished store of 256-token chunk `chunk` (one token past it, as LMCache sends)."""
    start, end = 256 * chunk, min(256 * (chunk + 1), len(tokens))
    return BlockStored(block_hashes=(900 + chunk,), parent_block_hash=899 + chunk if chunk else None,
                       token_ids=tuple(tokens[start:end + 1]), block_size=end - start, tier=CPU,
                       from_lmcache=True)


def test_a_gpu_chain_matches_its_prompt_and_stops_where_the_prompt_differs() -> None:
    """Blocks stored across two events (the second continuing the first by parent) match the
    prompt's 6 leading blocks; a prompt that differs in block 3 matches 3."""
    index = _index()
    index.apply("e1", [_gpu_store(0, 4), _gpu_store(4, 2)])
    assert index.match("e1", KEYS) == Residency({GPU: 6})
    other = PROMPT[:48] + [7] * 16 + PROMPT[64:]
    assert index.match("e1", block_keys(other)) == Residency({GPU: 3})
    assert index.match("e1", KEYS[:2]).total == 2


def test_a_removed_block_ends_the_match_and_a_clear_empties_the_gpu_only() -> None:
    """BlockRemoved of block 2 leaves a 2-block match; AllBlocksCleared drops the GPU tier but
    not LMCache's CPU chunks."""
    index = _index()
    index.apply("e1", [_gpu_store(0, 6), _lmcache_store(0)])
    index.apply("e1", [BlockRemoved((b"g2",), GPU)])
    assert index.match("e1", KEYS) == Residency({GPU: 2, CPU: 14})
    index.apply("e1", [AllBlocksCleared()])
    assert index.match("e1", KEYS) == Residency({CPU: 16}) and index.size("e1", GPU) == 0


def test_gpu_blocks_past_a_gpu_miss_do_not_count() -> None:
    """vLLM's prefix cache stops at the first block the GPU lacks: GPU blocks after it are no hit
    (without an offload tier continuing the run)."""
    index = _index()
    index.apply("e1", [_gpu_store(0, 6), BlockRemoved((b"g2",), GPU)])
    assert index.match("e1", KEYS) == Residency({GPU: 2})


def test_an_lmcache_chunk_is_sixteen_blocks_behind_the_gpu_ones() -> None:
    """A 256-token chunk (sent with 257 tokens) holds 16 router blocks; the next chunk chains by
    its parent chunk hash; a prompt's match takes the GPU blocks first, then the CPU ones."""
    index = _index()
    index.apply("e1", [_gpu_store(0, 4), _lmcache_store(0), _lmcache_store(1)])
    assert index.size("e1", CPU) == 20  # 16 + the 4 whole blocks of the 64-token tail chunk
    assert index.match("e1", KEYS) == Residency({GPU: 4, CPU: 16})


def test_an_exclusive_cpu_tier_continues_the_gpu_run() -> None:
    """vLLM's offloading connector is asked for the blocks past the GPU hit: a CPU tier holding
    blocks 4-9 but not the GPU's 0-3 (an exclusive, victim tier, as the emulator's) serves 6 more;
    an LMCache tier, looked up from the prompt's start, serves nothing without its first chunk."""
    index = _index()
    cpu = BlockStored(block_hashes=tuple(f"g{i}".encode() for i in range(4, 10)), parent_block_hash=b"g3",
                      token_ids=tuple(PROMPT[16 * 4:16 * 10]), block_size=16, tier=CPU)
    index.apply("e1", [_gpu_store(0, 4), cpu])
    assert index.match("e1", KEYS) == Residency({GPU: 4, CPU: 6})
    tokens = list(range(16 * 48))
    lmcache = _index(cpu=16 * 20)  # chunk 1 (blocks 16-31) pushes chunk 0 out
    gpu = BlockStored(block_hashes=tuple(f"g{i}".encode() for i in range(16)), parent_block_hash=None,
                      token_ids=tuple(tokens[:256]), block_size=16, tier=GPU)
    lmcache.apply("e1", [gpu, _lmcache_store(0, tokens), _lmcache_store(1, tokens)])
    assert lmcache.size("e1", CPU) == 16
    assert lmcache.match("e1", block_keys(tokens)) == Residency({GPU: 16})


def test_a_store_with_an_unknown_parent_is_counted_not_keyed() -> None:
    """Without its parent's keys a block cannot be keyed: it is an orphan and matches nothing."""
    index = _index()
    index.apply("e1", [_gpu_store(3, 2)])
    assert index.orphans["e1"] == 1 and index.size("e1", GPU) == 0
    assert index.match("e1", KEYS) == Residency({})


def test_blocks_under_a_lora_adapter_are_not_the_base_models() -> None:
    """The same tokens stored under an adapter match the adapter's keys only."""
    index = _index()
    store = _gpu_store(0, 3)
    index.apply("e1", [BlockStored(store.block_hashes, None, store.token_ids, 16, GPU, lora_name="sql")])
    assert index.match("e1", KEYS).total == 0
    assert index.match("e1", block_keys(PROMPT, "sql")) == Residency({GPU: 3})


def test_clear_forgets_a_restarted_engine_and_others_keep_theirs() -> None:
    """`clear` (an engine restart) empties every tier of that engine only."""
    index = _index()
    index.add_engine("e2", {GPU: 16 * 100})
    for engine in ("e1", "e2"):
        index.apply(engine, [_gpu_store(0, 3)])
    index.apply("e1", [_lmcache_store(0)])
    index.clear("e1")
    assert index.match("e1", KEYS).total == 0 and index.match("e2", KEYS) == Residency({GPU: 3})
    index.remove_engine("e2")
    assert index.engines == ("e1",)


def test_a_tier_past_its_capacity_drops_its_oldest_blocks() -> None:
    """A CPU tier of 20 blocks, sent two chunks (32 blocks), keeps the newer chunk only; a chunk
    stored again becomes the youngest."""
    tokens = list(range(16 * 48))
    index = _index(cpu=16 * 20)
    index.apply("e1", [_lmcache_store(0, tokens), _lmcache_store(1, tokens)])
    assert index.size("e1", CPU) == 16 and index.capacity("e1", CPU) == 20
    assert index.match("e1", block_keys(tokens)).total == 0  # the first chunk went: no leading run
    with pytest.raises(KeyError):
        index.apply("nobody", [])


_ops = st.lists(st.tuples(st.sampled_from(["store", "remove", "clear"]), st.integers(0, 19),
                          st.integers(1, 6), st.sampled_from([GPU, CPU])), max_size=60)


@given(ops=_ops, capacity=st.integers(0, 12))
def test_no_tier_ever_exceeds_its_capacity_and_a_match_never_exceeds_the_prompt(ops, capacity) -> None:
    """Any sequence of stores (chained or orphaned), removals and clears keeps every tier within
    its capacity in blocks, and a match counts at most the prompt's blocks, never a block absent
    from every tier."""
    index = _index(gpu=16 * capacity, cpu=16 * capacity)
    for op, first, count, tier in ops:
        count = min(count, 20 - first)
        if op == "store":
            gpu = _gpu_store(first, count)
            index.apply("e1", [BlockStored(gpu.block_hashes, gpu.parent_block_hash, gpu.token_ids, 16, tier)])
        elif op == "remove":
            index.apply("e1", [BlockRemoved((f"g{first}".encode(),), tier)])
        else:
            index.apply("e1", [AllBlocksCleared()])
        assert all(index.size("e1", t) <= capacity for t in (GPU, CPU))
    match = index.match("e1", KEYS)
    assert match.total <= len(KEYS)
    assert all(index.match("e1", KEYS[:n]).total == n for n in range(match.total + 1))


@given(st.lists(st.integers(0, 2**40), max_size=80), st.integers(0, 80))
def test_keys_of_a_prefix_are_a_prefix_of_the_keys(tokens, cut) -> None:
    """Keys cover whole 16-token blocks only, chain (a prefix's keys are the leading keys), and
    continuing from a key equals keying the whole; token ids past 32 bits (LMCache's multimodal
    hashes) key too."""
    keys, cut = block_keys(tokens), min(cut, len(tokens))
    assert len(keys) == len(tokens) // 16
    assert block_keys(tokens[:cut]) == keys[:cut // 16]
    head = 16 * (cut // 16)
    assert chain(keys[head // 16 - 1] if head else root_key(), tokens[head:]) == keys[head // 16:]


def test_a_changed_token_changes_its_block_and_every_later_one() -> None:
    """Keys depend on the whole prefix: one token changed in block 1 changes keys 1.. only."""
    changed = PROMPT[:20] + [5] + PROMPT[21:]
    other = block_keys(changed)
    assert other[0] == KEYS[0] and all(a != b for a, b in zip(other[1:], KEYS[1:], strict=True))
