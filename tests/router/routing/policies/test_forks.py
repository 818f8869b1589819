"""Fork points: a prefix many conversations continue differently is shared; one conversation's
own rounds never make its prefix shared; the table stays bounded."""

from __future__ import annotations

from collections import Counter

from policy_helpers import engines, request, user_text

from router.routing.policies._forks import ForkPoints
from router.routing.policies.prefix import PrefixPolicy


def test_two_distinct_continuations_make_a_point_shared() -> None:
    """Two prompts forking at block 3 with different continuations: shared to depth 3."""
    forks = ForkPoints()
    forks.record([1, 2, 3, 40], matched=3)
    assert forks.shared_depth([1, 2, 3, 50], limit=4) == 0
    forks.record([1, 2, 3, 50], matched=3)
    assert forks.shared_depth([1, 2, 3, 60], limit=4) == 3
    assert forks.shared_depth([1, 2, 3, 60], limit=2) == 0  # beyond what any engine holds


def test_one_conversation_rounds_never_share_its_prefix() -> None:
    """Each round forks at a new point with one continuation: nothing becomes shared."""
    forks, prompt = ForkPoints(), [1, 2, 3]
    for turn in range(10):
        forks.record([*prompt, 100 + turn], matched=len(prompt))
        forks.record([*prompt, 100 + turn], matched=len(prompt))  # a retry of the same round
        prompt = [*prompt, 100 + turn]
    assert forks.shared_depth([*prompt, 999], limit=len(prompt) + 1) == 0


def test_the_table_is_bounded() -> None:
    """At most `max_points` fork points are kept, oldest forgotten first."""
    forks = ForkPoints(max_points=10)
    for point in range(100):
        forks.record([point, point + 1000], matched=1)
    assert len(forks) == 10


def test_users_of_a_hot_long_system_prompt_spread_over_the_engines() -> None:
    """40 new users behind a 12 KB (3k-token) system prompt, one after another: once two have
    forked from it the prompt is shared, so the rest are placed by hashing past it."""
    system = (b"<|system|>\\nYou are the support assistant of a large shop. " * 300)[:12_000]
    pool, policy = engines(4), PrefixPolicy()
    counts = Counter(policy.select(request(system + user_text(u, 2000)), pool).engine.id for u in range(40))
    assert len(counts) == 4 and max(counts.values()) <= 16
