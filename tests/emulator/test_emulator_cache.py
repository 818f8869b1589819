"""The emulator's prefix cache: LRU order, tier demotion, capacity bounds, exact counters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.cache import PrefixCache
from emulator.errors import ConfigError, EmulatorError
from router.routing.prompt import BLOCK_TOKENS, block_hashes


def _prompt(tag: str, blocks: int) -> tuple[list[int], int]:
    """Hashes and token count of a prompt of exactly `blocks` full blocks plus 1 token."""
    text = tag * (BLOCK_TOKENS * 4 * blocks) + "z"
    hashes = block_hashes(text)
    assert len(hashes) == blocks
    return hashes, blocks * BLOCK_TOKENS + 1


def _run(cache: PrefixCache, hashes: list[int], tokens: int):
    """Admit then release a request, like one that finished."""
    lookup = cache.admit(hashes, tokens)
    cache.release(hashes)
    return lookup


def test_cold_prompt_misses_and_second_hits_all_full_blocks():
    """A repeated prompt hits every full block on the GPU; counters count tokens exactly."""
    cache = PrefixCache(gpu_tokens=1000)
    hashes, tokens = _prompt("a", 4)
    first = _run(cache, hashes, tokens)
    second = _run(cache, hashes, tokens)
    assert (first.gpu_hit_tokens, first.cpu_hit_tokens, first.miss_tokens) == (0, 0, tokens)
    assert (second.gpu_hit_tokens, second.cpu_hit_tokens, second.miss_tokens) == (64, 0, 1)
    assert (cache.queried_tokens, cache.gpu_hit_tokens, cache.cpu_hit_tokens) == (2 * tokens, 64, 0)


def test_fully_cached_prompt_still_computes_its_last_token():
    """Like vLLM, at most prompt_tokens - 1 tokens hit: an exact-block prompt loses its last block."""
    cache = PrefixCache(gpu_tokens=1000)
    text = "b" * (BLOCK_TOKENS * 4 * 3)
    hashes = block_hashes(text)
    _run(cache, hashes, 48)
    again = _run(cache, hashes, 48)
    assert (again.gpu_hit_tokens, again.miss_tokens) == (32, 16)


def test_lru_evicts_least_recently_used_prompt_first():
    """With room for two prompts, touching A then adding C evicts B, not A."""
    cache = PrefixCache(gpu_tokens=2 * 2 * BLOCK_TOKENS)
    a, b, c = (_prompt(t, 2) for t in "abc")
    _run(cache, *a)
    _run(cache, *b)
    _run(cache, *a)  # A is now the most recent
    _run(cache, *c)
    assert cache.peek(*a).gpu_hit_tokens == 32
    assert cache.peek(*b).gpu_hit_tokens == 0
    assert cache.gpu_blocks == cache.gpu_capacity_blocks == 4


def test_finished_prompt_loses_its_tail_before_its_head():
    """Blocks are freed tail first, so one eviction costs a prompt its last block only."""
    cache = PrefixCache(gpu_tokens=3 * BLOCK_TOKENS)
    a, b = _prompt("a", 3), _prompt("b", 1)
    _run(cache, *a)
    _run(cache, *b)
    assert cache.on_gpu(a[0][0]) and cache.on_gpu(a[0][1]) and not cache.on_gpu(a[0][2])


def test_evicted_blocks_move_to_cpu_and_hit_there():
    """GPU evictions are demoted to the CPU tier; the next lookup reports them as CPU hits."""
    cache = PrefixCache(gpu_tokens=2 * BLOCK_TOKENS, cpu_tokens=10 * BLOCK_TOKENS)
    a, b = _prompt("a", 2), _prompt("b", 2)
    _run(cache, *a)
    _run(cache, *b)
    assert cache.cpu_blocks == 2
    again = _run(cache, *a)
    assert (again.gpu_hit_tokens, again.cpu_hit_tokens, again.miss_tokens) == (0, 32, 1)
    assert cache.cpu_hit_tokens == 32 and cache.gpu_hit_tokens == 0
    assert cache.cpu_blocks == 2  # A moved up, B moved down: the tiers stay exclusive


def test_gpu_prefix_then_cpu_continuation():
    """A prompt whose head is on the GPU and middle on the CPU gets both kinds of hit."""
    cache = PrefixCache(gpu_tokens=3 * BLOCK_TOKENS, cpu_tokens=10 * BLOCK_TOKENS)
    a, b = _prompt("a", 3), _prompt("b", 2)
    _run(cache, *a)
    _run(cache, *b)  # evicts A's two tail blocks to the CPU
    lookup = cache.peek(*a)
    assert (lookup.gpu_hit_tokens, lookup.cpu_hit_tokens, lookup.miss_tokens) == (16, 32, 1)


def test_cpu_tier_drops_its_oldest_block_when_full():
    """The CPU tier never exceeds its capacity; its LRU block is dropped."""
    cache = PrefixCache(gpu_tokens=BLOCK_TOKENS * 2, cpu_tokens=BLOCK_TOKENS)
    for tag in "abc":
        _run(cache, *_prompt(tag, 2))
    assert cache.cpu_blocks == 1 and cache.gpu_blocks == 2


def test_pinned_blocks_are_never_evicted():
    """Blocks of a running request stay on the GPU while another prompt needs room."""
    cache = PrefixCache(gpu_tokens=4 * BLOCK_TOKENS)
    a, b = _prompt("a", 2), _prompt("b", 2)
    cache.admit(*a)  # still running
    _run(cache, *b)
    _run(cache, *_prompt("c", 2))
    assert all(cache.on_gpu(h) for h in a[0])
    assert cache.pinned_blocks == 2


def test_overcommit_raises():
    """Pinning more distinct blocks than the GPU holds is refused (the scheduler must prevent it)."""
    cache = PrefixCache(gpu_tokens=2 * BLOCK_TOKENS)
    cache.admit(*_prompt("a", 2))
    with pytest.raises(EmulatorError, match="over-committed"):
        cache.admit(*_prompt("b", 1))


def test_capacity_must_hold_a_block():
    """A GPU tier smaller than one block is a configuration error naming the field."""
    with pytest.raises(ConfigError, match="gpu_cache_tokens"):
        PrefixCache(gpu_tokens=BLOCK_TOKENS - 1)


_ops = st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(1, 6), st.booleans()), max_size=40)


@settings(max_examples=150, deadline=None)
@given(ops=_ops, gpu_blocks=st.integers(6, 12), cpu_blocks=st.integers(0, 8))
def test_hits_never_exceed_queries_and_tiers_stay_bounded(ops, gpu_blocks, cpu_blocks):
    """Any admit/release sequence: hits <= queried tokens, and neither tier exceeds its capacity."""
    cache = PrefixCache(gpu_tokens=gpu_blocks * BLOCK_TOKENS, cpu_tokens=cpu_blocks * BLOCK_TOKENS)
    running: list[list[int]] = []
    for tag, blocks, keep_running in ops:
        hashes, tokens = _prompt(tag, blocks)
        if sum(len(h) for h in running) + blocks > gpu_blocks:
            for held in running:
                cache.release(held)
            running.clear()
        lookup = cache.admit(hashes, tokens)
        assert lookup.gpu_hit_tokens + lookup.cpu_hit_tokens < tokens
        (running.append(hashes) if keep_running else cache.release(hashes))
        assert cache.gpu_blocks <= cache.gpu_capacity_blocks
        assert cache.cpu_blocks <= cache.cpu_capacity_blocks
    assert cache.gpu_hit_tokens + cache.cpu_hit_tokens <= cache.queried_tokens
