"""Pure pieces of the router shell: rate limiting, API keys, engine load parsing, the registry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import VLLM_KV_USAGE_LEGACY, VLLM_RUNNING, VLLM_WAITING
from router.routing.engines import EngineRegistry, EngineSpec
from router.shell.auth import ApiKeys
from router.shell.engine_metrics import parse_load
from router.shell.errors import Unauthorized
from router.shell.ratelimit import RateLimiter


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=60))
def test_token_bucket_never_admits_more_than_burst_plus_refill(gaps: list[float]) -> None:
    """Over any window the bucket admits at most burst + rate × elapsed requests."""
    limiter = RateLimiter(rate=2.0, burst=3)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        admitted += limiter.acquire("k", now) == 0.0
    assert admitted <= 3 + 2.0 * now + 1e-9


def test_token_bucket_tells_how_long_to_wait_and_forgets_old_callers() -> None:
    """A refused caller learns the wait; the caller table stays bounded."""
    limiter = RateLimiter(rate=1.0, burst=1, max_callers=2)
    assert limiter.acquire("a", 0.0) == 0.0
    assert limiter.acquire("a", 0.25) == pytest.approx(0.75)
    for caller in ("b", "c", "d"):
        limiter.acquire(caller, 1.0)
    assert len(limiter._buckets) == 2 and "a" not in limiter._buckets


def test_api_keys_accept_only_listed_bearer_tokens() -> None:
    """Only `Bearer <listed key>` passes; the identity names the key's position, not the key."""
    keys = ApiKeys(("k1", "k2"))
    assert keys.check("Bearer k2") == "key-1" and keys.check("bearer k1") == "key-0"
    for header in (None, "", "k1", "Bearer", "Bearer k3", "Token k1", "Bearer \udcff"):
        with pytest.raises(Unauthorized) as info:
            keys.check(header)
        assert "k1" not in str(info.value) and "k2" not in str(info.value)
    assert not ApiKeys(()).enabled


def test_parse_load_sums_label_sets_and_reads_the_legacy_kv_name() -> None:
    """Waiting/running are summed over label sets; legacy kv usage is read when current is absent."""
    text = (f'# HELP x\n{VLLM_WAITING}{{model_name="a"}} 2.0\n{VLLM_WAITING}{{model_name="b"}} 3\n'
            f'{VLLM_WAITING}_created 123\n{VLLM_RUNNING} 4 1700000000\n'
            f'{VLLM_KV_USAGE_LEGACY}{{x="}} 1"}} 0.5\n'
            "vllm:garbage{ nope\n")
    load = parse_load(text)
    assert (load.waiting, load.running, load.kv_usage) == (5, 4, 0.5)
    assert parse_load("") == parse_load("vllm:num_requests_waiting NaNx")


def test_registry_candidates_follow_health_models_and_changes() -> None:
    """Candidates per model track health flips, learned models and set changes (policy told)."""
    changes: list[tuple[str, ...]] = []
    reg = EngineRegistry(default_models=(), on_change=lambda ids: changes.append(tuple(ids)))
    reg.replace([EngineSpec(url="a", gpu_cache_tokens=1, models=frozenset({"x"})),
                 EngineSpec(url="b", gpu_cache_tokens=1)])
    assert [e.id for e in reg.candidates("x")] == ["a", "b"] and [e.id for e in reg.candidates("y")] == ["b"]
    reg.set_models("b", ["y"])
    assert [e.id for e in reg.candidates("x")] == ["a"] and not reg.is_known("z")
    assert reg.set_healthy("a", False) and not reg.set_healthy("a", False)
    assert reg.candidates("x") == [] and reg.served_models() == ["x", "y"]  # out of rotation, still served
    reg.replace([EngineSpec(url="b", gpu_cache_tokens=5)])
    assert changes == [("a", "b"), ("b",)] and reg.states["b"].gpu_cache_tokens == 5
