"""`round_robin`: every engine in turn, outcome `new`."""

from __future__ import annotations

import pytest
from policy_helpers import engines, request

from contracts import OUTCOME_NEW
from router.routing.base import NoEngineError
from router.routing.policies.round_robin import RoundRobinPolicy


def test_cycles_through_the_engines_in_order() -> None:
    """Six requests over three engines visit each twice, in order."""
    pool, policy = engines(3), RoundRobinPolicy()
    chosen = [policy.select(request(b"p"), pool) for _ in range(6)]
    assert [d.engine.id for d in chosen] == [e.id for e in pool] * 2
    assert {d.outcome for d in chosen} == {OUTCOME_NEW}


def test_no_engine_raises() -> None:
    """An empty candidate list raises NoEngineError."""
    with pytest.raises(NoEngineError):
        RoundRobinPolicy().select(request(b"p"), [])
