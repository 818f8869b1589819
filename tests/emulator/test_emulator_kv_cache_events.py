"""The emulator's cache reports its changes: replaying its events rebuilds exactly what it holds,
per tier, with each block's parent and token ids (issue 19)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.kv_events import MEDIUM_CPU, MEDIUM_GPU
from emulator.cache import Cleared, PrefixCache, Removed, Stored
from emulator.errors import ConfigError
from emulator.tokenize import encode
from router.routing.prompt import BLOCK_TOKENS, block_hashes


def _prompt(text: str) -> tuple[list[int], int, list[int]]:
    """Blocks, token count and token ids of a prompt."""
    return block_hashes(text), len(encode(text)), encode(text)


def _admit(cache: PrefixCache, text: str, release: bool = True):
    blocks, tokens, ids = _prompt(text)
    lookup = cache.admit(blocks, tokens, ids)
    if release:
        cache.release(blocks)
    return blocks, lookup


def test_a_cold_prompt_is_one_gpu_run_with_its_tokens():
    """A new prompt's full blocks are stored as one chain from the root, with the prompt's ids."""
    cache = PrefixCache(gpu_tokens=1000, track_events=True)
    text = "x" * (3 * 64 + 10)
    blocks, _ = _admit(cache, text)
    assert cache.take_events() == [Stored(MEDIUM_GPU, tuple(blocks), None, tuple(encode(text)[:48]))]
    assert cache.take_events() == []


def test_a_shared_prefix_stores_only_the_new_tail_under_its_parent():
    """The second prompt shares two blocks: only its third block is stored, parented on block 2."""
    cache = PrefixCache(gpu_tokens=1000, track_events=True)
    head = "h" * 128
    _admit(cache, head + "a" * 64)
    cache.take_events()
    blocks, lookup = _admit(cache, head + "b" * 64 + "!")
    assert lookup.gpu_hit_tokens == 32
    assert cache.take_events() == [Stored(MEDIUM_GPU, (blocks[2],), blocks[1], tuple(encode("b" * 64)))]


def test_eviction_demotion_and_cpu_drop_are_reported_in_order():
    """A full GPU evicts (GPU removal), demotes to the CPU (CPU store with the block's own parent and
    tokens), and a full CPU drops its oldest (CPU removal); the new run is stored last."""
    cache = PrefixCache(gpu_tokens=2 * BLOCK_TOKENS, cpu_tokens=BLOCK_TOKENS, track_events=True)
    a, _ = _admit(cache, "a" * 128)
    cache.take_events()
    b, _ = _admit(cache, "b" * 128)
    # a is released tail first, so a[1] is the oldest free block and goes first
    assert cache.take_events() == [
        Removed(MEDIUM_GPU, (a[1],)), Stored(MEDIUM_CPU, (a[1],), a[0], tuple(encode("a" * 64))),
        Removed(MEDIUM_GPU, (a[0],)), Stored(MEDIUM_CPU, (a[0],), None, tuple(encode("a" * 64))),
        Removed(MEDIUM_CPU, (a[1],)),
        Stored(MEDIUM_GPU, tuple(b), None, tuple(encode("b" * 128))),
    ]


def test_a_cpu_hit_moves_the_block_back_to_the_gpu():
    """Loading from the CPU tier removes the CPU copy (this tier is exclusive) and stores it on the GPU."""
    cache = PrefixCache(gpu_tokens=2 * BLOCK_TOKENS, cpu_tokens=4 * BLOCK_TOKENS, track_events=True)
    a, _ = _admit(cache, "a" * 64 + "!")
    _admit(cache, "b" * 128)
    cache.take_events()
    again, lookup = _admit(cache, "a" * 64 + "!")
    assert lookup.cpu_hit_tokens == 16
    events = cache.take_events()
    assert Removed(MEDIUM_CPU, (a[0],)) in events and events[-1] == Stored(MEDIUM_GPU, (a[0],), None,
                                                                          tuple(encode("a" * 64)))


def test_clear_forgets_blocks_even_those_still_running():
    """`clear` records one Cleared; a running request's blocks miss afterwards and, released with
    their old epoch, give their room back without returning to the cache."""
    cache = PrefixCache(gpu_tokens=4 * BLOCK_TOKENS, track_events=True)
    blocks, tokens, ids = _prompt("r" * 128 + "!")
    cache.admit(blocks, tokens, ids)
    epoch = cache.epoch
    cache.take_events()
    cache.clear()
    assert cache.take_events() == [Cleared()]
    assert cache.peek(blocks, tokens).gpu_hit_tokens == 0 and cache.gpu_blocks == 2
    cache.release(blocks, epoch)
    assert cache.gpu_blocks == 0 and cache.peek(blocks, tokens).gpu_hit_tokens == 0


def test_a_gpu_only_clear_keeps_the_cpu_tier():
    """vLLM's reset_prefix_cache clears the GPU pool only: CPU copies still hit."""
    cache = PrefixCache(gpu_tokens=2 * BLOCK_TOKENS, cpu_tokens=4 * BLOCK_TOKENS, track_events=True)
    a, _ = _admit(cache, "a" * 128 + "!")
    _admit(cache, "b" * 128)
    cache.clear(cpu=False)
    blocks, tokens, _ = _prompt("a" * 128 + "!")
    assert cache.peek(blocks, tokens).cpu_hit_tokens == 32 and cache.gpu_blocks == 0


def test_tracking_needs_the_token_ids():
    """Without the prompt's ids there is nothing to describe the blocks with: refused, naming it."""
    cache = PrefixCache(gpu_tokens=1000, track_events=True)
    blocks, tokens, _ = _prompt("z" * 100)
    with pytest.raises(ConfigError, match="token_ids"):
        cache.admit(blocks, tokens)


def test_untracked_cache_records_nothing():
    """Events are off by default (no memory for them)."""
    cache = PrefixCache(gpu_tokens=1000)
    _admit(cache, "q" * 200)
    cache.clear()
    assert cache.take_events() == []


_OPS = st.lists(st.one_of(
    st.tuples(st.just("run"), st.sampled_from("abcd"), st.integers(1, 5), st.sampled_from("xyz"),
              st.integers(0, 4)),
    st.tuples(st.just("hold"), st.sampled_from("abcd"), st.integers(1, 3), st.sampled_from("xyz"),
              st.integers(0, 2)),
    st.tuples(st.just("clear"), st.booleans()),
), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(ops=_OPS)
def test_replaying_the_events_rebuilds_the_cache(ops):
    """Any mix of prompts (shared heads, different tails), running holders and clears: a consumer
    applying the events in order holds exactly the cache's blocks per tier, and every stored
    block's parent and tokens are those of its prompt."""
    cache = PrefixCache(gpu_tokens=10 * BLOCK_TOKENS, cpu_tokens=6 * BLOCK_TOKENS, track_events=True)
    held: list[tuple[list[int], int]] = []
    seen: dict[int, tuple[int | None, tuple[int, ...]]] = {}
    tiers: dict[str, set[int]] = {MEDIUM_GPU: set(), MEDIUM_CPU: set()}
    for op in ops:
        if op[0] == "clear":
            cache.clear(cpu=op[1])
            if op[1]:
                tiers[MEDIUM_CPU].clear()
        else:
            _, head, blocks_n, tail, tail_n = op
            text = head * 64 * blocks_n + tail * 64 * tail_n + "."
            blocks, tokens, ids = _prompt(text)
            if cache.pinned_blocks + len(blocks) > cache.gpu_capacity_blocks:
                _release_all(cache, held)  # held before a clear: released with their old epoch
            cache.admit(blocks, tokens, ids)
            for i, block in enumerate(blocks):
                seen[block] = (blocks[i - 1] if i else None, tuple(ids[i * 16:(i + 1) * 16]))
            if op[0] == "run":
                cache.release(blocks)
            else:
                held.append((blocks, cache.epoch))
        _apply(tiers, cache.take_events(), seen)
        assert {b for b in seen if cache.on_gpu(b)} == tiers[MEDIUM_GPU]
        assert {b for b in seen if cache.on_cpu(b)} == tiers[MEDIUM_CPU]
        assert cache.cpu_blocks == len(tiers[MEDIUM_CPU])


def _release_all(cache: PrefixCache, held: list[tuple[list[int], int]]) -> None:
    for blocks, epoch in held:
        cache.release(blocks, epoch)
    held.clear()


def _apply(tiers: dict[str, set[int]], events, seen) -> None:
    for event in events:
        if isinstance(event, Cleared):
            tiers[MEDIUM_GPU].clear()
        elif isinstance(event, Removed):
            assert all(b in tiers[event.tier] for b in event.blocks)
            tiers[event.tier].difference_update(event.blocks)
        else:
            parents = (event.parent, *event.blocks[:-1])
            for i, (block, parent) in enumerate(zip(event.blocks, parents, strict=True)):
                assert seen[block] == (parent, event.token_ids[i * 16:(i + 1) * 16])
                tiers[event.tier].add(block)
