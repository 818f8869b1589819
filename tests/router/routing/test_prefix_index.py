"""The prefix index: exact leading-run matches, LRU eviction at the engine's capacity, masks,
and the tips (the last block of each prompt sent, while an engine holds it)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.routing.prefix_index import PrefixIndex
from router.routing.prompt import block_hashes

ENGINES = ("a", "b", "c")


def chain(tokens: list[int]) -> list[int]:
    """Chained hashes with one block per token, so small alphabets share prefixes often."""
    return block_hashes(bytes(tokens), block_bytes=1)


class ModelIndex:
    """Brute-force reference: per engine a list, oldest first; insert touches last-to-first."""

    def __init__(self) -> None:
        self.lru: dict[str, list[int]] = {}
        self.cap: dict[str, int] = {}
        self.tips: set[int] = set()

    def set_capacity(self, engine: str, blocks: int) -> None:
        self.lru.setdefault(engine, [])
        self.cap[engine] = blocks
        self._trim(engine)

    def insert(self, engine: str, hashes: list[int]) -> None:
        lru = self.lru[engine]
        kept = hashes[: self.cap[engine]]
        self.tips.update(kept[-1:])
        for h in reversed(kept):
            if h in lru:
                lru.remove(h)
            lru.append(h)
        self._trim(engine)

    def match(self, engine: str, hashes: list[int]) -> int:
        held = set(self.lru.get(engine, ()))
        run = 0
        while run < len(hashes) and hashes[run] in held:
            run += 1
        return run

    def deepest_tip(self, hashes: list[int], start: int, end: int) -> int:
        depths = [d for d in range(start + 1, min(end, len(hashes)) + 1) if hashes[d - 1] in self.tips]
        return max(depths, default=0)

    def _trim(self, engine: str) -> None:
        lru = self.lru[engine]
        del lru[: max(len(lru) - self.cap[engine], 0)]
        self.tips &= set().union(*self.lru.values())


tokens = st.lists(st.integers(0, 2), max_size=10)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.sampled_from(ENGINES), tokens),
        st.tuples(st.just("capacity"), st.sampled_from(ENGINES), st.integers(0, 12)),
    ),
    max_size=40,
)


def apply(ops: list[tuple], index: PrefixIndex, model: ModelIndex) -> None:
    for engine in ENGINES:
        index.set_capacity(engine, 8)
        model.set_capacity(engine, 8)
    for op, engine, arg in ops:
        if op == "insert":
            index.insert(engine, chain(arg))
            model.insert(engine, chain(arg))
        else:
            index.set_capacity(engine, arg)
            model.set_capacity(engine, arg)


@settings(max_examples=150, deadline=None)
@given(ops=operations, probe=tokens)
def test_index_agrees_with_a_brute_force_lru(ops: list[tuple], probe: list[int]) -> None:
    """After any inserts and capacity changes the index holds what a plain LRU holds, in the
    same recency order, and matches the same leading runs."""
    index, model = PrefixIndex(), ModelIndex()
    apply(ops, index, model)
    hashes = chain(probe)
    for engine in ENGINES:
        assert index.blocks_of(engine) == model.lru[engine]
        assert index.match(engine, hashes) == model.match(engine, hashes)


@settings(max_examples=150, deadline=None)
@given(ops=operations, probe=tokens)
def test_match_never_exceeds_the_prompt_and_size_never_exceeds_capacity(ops: list[tuple],
                                                                       probe: list[int]) -> None:
    """A match is at most the prompt's blocks; an engine never holds more than its capacity."""
    index = PrefixIndex()
    apply(ops, index, ModelIndex())
    hashes = chain(probe)
    for engine in ENGINES:
        assert 0 <= index.match(engine, hashes) <= len(hashes)
        assert index.size(engine) <= index.capacity(engine)


def test_free_blocks_is_capacity_minus_blocks_held_and_zero_for_unknown_engines() -> None:
    """The room the cost model's eviction charge reads: capacity minus what the index holds."""
    index = PrefixIndex()
    index.set_capacity("a", 10)
    index.set_capacity("b", 4)
    index.insert("a", chain([1, 2, 3]))
    index.insert("b", chain([1, 2, 3, 4, 5, 6]))  # the head that fits is kept
    assert index.free_blocks(["a", "b", "gone"]) == {"a": 7, "b": 0, "gone": 0}


@settings(max_examples=150, deadline=None)
@given(ops=operations, probe=tokens)
def test_match_all_equals_match_per_engine(ops: list[tuple], probe: list[int]) -> None:
    """The shared-mask lookup gives every engine the same match as its own LRU."""
    index = PrefixIndex()
    apply(ops, index, ModelIndex())
    hashes = chain(probe)
    expected = {e: index.match(e, hashes) for e in ENGINES if index.match(e, hashes)}
    assert index.match_all(hashes) == expected
    held = set().union(*(index.blocks_of(e) for e in ENGINES))
    assert index.distinct_blocks() == len(held)


@settings(max_examples=150, deadline=None)
@given(ops=operations, probe=tokens, start=st.integers(0, 10), end=st.integers(0, 12))
def test_tips_are_the_ends_of_prompts_sent_while_held(ops: list[tuple], probe: list[int], start: int,
                                                      end: int) -> None:
    """A block is a tip exactly while it ended some prompt sent (as far as it fit) and an engine
    still holds it; `deepest_tip` finds the deepest one in a window of a prompt."""
    index, model = PrefixIndex(), ModelIndex()
    apply(ops, index, model)
    seen = {h for _, _, arg in ops if isinstance(arg, list) for h in chain(arg)} | set(chain(probe))
    assert {h for h in seen if index.is_tip(h)} == model.tips
    assert index.tip_count() == len(model.tips)
    hashes = chain(probe)
    assert index.deepest_tip(hashes, start, end) == model.deepest_tip(hashes, start, end)


def test_a_later_round_contains_the_tip_of_the_one_before() -> None:
    """A conversation's next prompt extends its last one, so it holds that prompt's tip; a
    prompt forking off the same prefix earlier holds none; insert returns the tip it kept."""
    index = PrefixIndex()
    index.set_capacity("a", 100)
    first = chain([1, 2, 3, 4])
    assert index.insert("a", first) == first[-1]
    assert index.deepest_tip(chain([1, 2, 3, 4, 5, 6]), 0, 6) == 4
    assert index.deepest_tip(chain([1, 2, 9, 9]), 0, 4) == 0
    assert index.insert("a", []) is None


def test_eviction_drops_a_prompt_tail_first() -> None:
    """When room runs out the deepest blocks of the oldest prompt go first, so a prefix stays."""
    index = PrefixIndex()
    index.set_capacity("a", 6)
    old, new = chain([1, 1, 1, 1]), chain([2, 2, 2, 2])
    index.insert("a", old)
    index.insert("a", new)
    assert index.match("a", old) == 2
    assert index.match("a", new) == 4


def test_a_prompt_longer_than_capacity_keeps_its_head() -> None:
    """Only the leading blocks that fit are recorded."""
    index = PrefixIndex()
    index.set_capacity("a", 3)
    index.insert("a", chain([0, 1, 2, 0, 1]))
    assert index.match("a", chain([0, 1, 2, 0, 1])) == 3
    assert index.size("a") == 3


def test_remove_engine_clears_its_blocks_and_frees_its_slot() -> None:
    """A removed engine matches nothing, its blocks leave the masks, and a new engine reuses the bit."""
    index = PrefixIndex()
    for engine in ("a", "b"):
        index.set_capacity(engine, 10)
    index.insert("a", chain([1, 2, 3]))
    index.insert("b", chain([1, 2]))
    index.remove_engine("a")
    assert index.match_all(chain([1, 2, 3])) == {"b": 2}
    assert index.distinct_blocks() == 2
    index.set_capacity("c", 10)
    index.insert("c", chain([1, 2, 3]))
    assert index.match_all(chain([1, 2, 3])) == {"b": 2, "c": 3}
    assert index.engine_ids() == ["b", "c"]


def test_retain_forgets_engines_not_listed() -> None:
    """`retain` keeps exactly the listed engines."""
    index = PrefixIndex()
    for engine in ENGINES:
        index.set_capacity(engine, 4)
        index.insert(engine, chain([5, 5]))
    index.retain(["b"])
    assert index.engine_ids() == ["b"]
    assert index.match_all(chain([5, 5])) == {"b": 2}


def test_insert_for_an_unknown_engine_is_an_error() -> None:
    """Inserting before `set_capacity` raises rather than growing an unbounded entry."""
    with pytest.raises(KeyError, match="unknown engine 'x'"):
        PrefixIndex().insert("x", chain([1]))


def test_negative_capacity_is_rejected() -> None:
    """A capacity below zero names the engine and the value."""
    with pytest.raises(ValueError, match=r"'a' must be >= 0 \(got -1\)"):
        PrefixIndex().set_capacity("a", -1)


def test_unknown_engines_match_nothing() -> None:
    """Lookups for an engine never tracked, or an empty prompt, find nothing."""
    index = PrefixIndex()
    assert index.match("nobody", chain([1])) == 0
    assert index.size("nobody") == 0
    assert index.capacity("nobody") is None
    assert index.match_all([]) == {}
