"""Weighted rollouts (`router.routing.rollout`): the split follows the weights, a conversation
keeps its version, router processes agree, a weight shift only moves conversations onto the
version that gained, and the rollout table's settings are checked with clear errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.routing.rollout import OPENING_BYTES, Rewrites, conversation_key, pick
from router.settings import RouterSettings, SettingsError, StaticEngine, check_rollout_weights

WEIGHTS = {"sql--v1": 90, "sql--v2": 10}


def _keys(n: int) -> list[bytes]:
    return [f"user-{i}".encode() for i in range(n)]


def test_the_split_follows_the_weights() -> None:
    """Over 20,000 conversations a 90/10 split gives 90 % ± 1 to v1; 70/20/10 within 1 point each."""
    got = Counter(pick("sql", WEIGHTS, k) for k in _keys(20_000))
    assert abs(got["sql--v1"] / 20_000 - 0.90) < 0.01, got
    three = {"a": 70, "b": 20, "c": 10}
    got3 = Counter(pick("x", three, k) for k in _keys(20_000))
    for version, weight in three.items():
        assert abs(got3[version] / 20_000 - weight / 100) < 0.01, got3


def test_zero_weight_is_never_picked_and_all_zero_is_an_error() -> None:
    """A version at 0 takes no conversation (0/100 sends all to v2); no positive weight raises."""
    assert {pick("sql", {"sql--v1": 0, "sql--v2": 100}, k) for k in _keys(2_000)} == {"sql--v2"}
    with pytest.raises(ValueError, match="no version with weight > 0"):
        pick("sql", {"sql--v1": 0}, b"k")


def test_order_of_versions_does_not_matter() -> None:
    """The same weights listed in another order pick the same version for every key."""
    flipped = dict(reversed(list(WEIGHTS.items())))
    assert all(pick("sql", WEIGHTS, k) == pick("sql", flipped, k) for k in _keys(2_000))


@settings(max_examples=60, deadline=None)
@given(before=st.integers(0, 100), gain=st.integers(0, 100), key=st.binary(min_size=1, max_size=64))
def test_raising_a_version_only_moves_conversations_onto_it(before: int, gain: int, key: bytes) -> None:
    """v2 going from w to w+g (v1 losing g): a conversation on v2 stays on v2 (property)."""
    after = min(100, before + gain)
    old = {"v1": 100 - before, "v2": before}
    new = {"v1": 100 - after, "v2": after}
    if before == 0:
        return
    if pick("r", old, key) == "v2":
        assert pick("r", new, key) == "v2"


def test_a_90_10_to_80_20_shift_moves_only_about_the_gained_tenth() -> None:
    """Of 20,000 conversations, about 10 % move (v1 -> v2), none move back."""
    keys = _keys(20_000)
    old = [pick("sql", WEIGHTS, k) for k in keys]
    new = [pick("sql", {"sql--v1": 80, "sql--v2": 20}, k) for k in keys]
    moved = Counter((a, b) for a, b in zip(old, new, strict=True) if a != b)
    assert set(moved) == {("sql--v1", "sql--v2")}
    assert abs(sum(moved.values()) / 20_000 - 0.10) < 0.01


def test_a_conversation_keeps_its_version_across_its_rounds() -> None:
    """Without a session header: a chat's later rounds (longer history) and a completion's longer
    prompt keep the opening's version; the session header, when sent, decides alone."""
    system = {"role": "system", "content": "You are terse. " * 100}  # shared by every conversation
    rewrites = Rewrites({"sql": WEIGHTS})
    for user in range(200):
        first = [system, {"role": "user", "content": f"question {user}"}]
        later = [*first, {"role": "assistant", "content": "answer"}, {"role": "user", "content": "more"}]
        assert (rewrites.target("sql", None, {"messages": first})
                == rewrites.target("sql", None, {"messages": later}))
        prompt = f"doc {user} " + "x" * OPENING_BYTES
        assert (rewrites.target("sql", None, {"prompt": prompt})
                == rewrites.target("sql", None, {"prompt": prompt + " and more"}))
        assert (rewrites.target("sql", f"u{user}", {"messages": first})
                == rewrites.target("sql", f"u{user}", {"messages": later[:1]}))


def test_the_opening_is_the_first_user_turn_not_the_shared_system_prompt() -> None:
    """Conversations sharing a system prompt but not their first question spread over versions."""
    system = {"role": "system", "content": "shared " * 500}
    got = Counter(Rewrites({"sql": WEIGHTS}).target(
        "sql", None, {"messages": [system, {"role": "user", "content": f"q{i}"}]}) for i in range(2_000))
    assert 0.85 < got["sql--v1"] / 2_000 < 0.95, got
    assert conversation_key("u1", {}) != conversation_key(None, {"prompt": "u1"})


def test_names_that_are_not_stable_pass_through() -> None:
    """A base model or a version named directly is not rewritten; versions are known as such."""
    rewrites = Rewrites({"sql": WEIGHTS})
    assert rewrites.target("m", None, {}) is None and rewrites.target("sql--v2", None, {}) is None
    assert rewrites.is_version("sql--v1") and not rewrites.is_version("sql")
    assert rewrites.names() == ["sql"] and not Rewrites({})


_CHILD = """
import json, sys
from router.routing.rollout import pick
print(json.dumps([pick("sql", {"sql--v1": 90, "sql--v2": 10}, f"user-{i}".encode()) for i in range(500)]))
"""


def test_router_processes_agree() -> None:
    """Two processes with different hash seeds pick the same version for every conversation."""
    picks = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env,
                             check=True, timeout=60)
        picks.append(json.loads(out.stdout))
    here = [pick("sql", WEIGHTS, k) for k in _keys(500)]
    assert picks[0] == picks[1] == here and len(set(here)) == 2


# --- the settings ------------------------------------------------------------------------


def _settings(**kw: object) -> RouterSettings:
    base: dict = {"engines": (StaticEngine(url="http://e:1"),), "models": ("m",),
                  "adapters": {"sql--v1": "m", "sql--v2": "m"}}
    return RouterSettings(**(base | kw))


@pytest.mark.parametrize(("weights", "field", "says"), [
    ({"v1": 90, "v2": 20}, "r", "summing to 100 (they sum to 110)"),
    ({"v1": 0, "v2": 0}, "r", "summing to 100 (they sum to 0)"),
    ({"v1": -10, "v2": 110}, "r.v1", "whole number in 0..100"),
    ({"v1": 90.0, "v2": 10}, "r.v1", "whole number in 0..100"),
    ({"v1": True, "v2": 99}, "r.v1", "whole number in 0..100"),
    ({}, "r", "one or more version names"),
])
def test_weights_are_whole_percentages_summing_to_100(weights: dict, field: str, says: str) -> None:
    """Each bad weight table is refused naming the field and what is allowed."""
    with pytest.raises(SettingsError, match=re.escape(says)) as info:
        check_rollout_weights("r", weights)
    assert info.value.field_name == field


def test_rollout_settings_are_checked_and_round_trip() -> None:
    """A good table round-trips through to_dict/from_dict; a version that is not an adapter, a
    stable name that is a model or adapter, and a version in two rollouts are refused."""
    good = _settings(rollouts={"sql": WEIGHTS})
    assert RouterSettings.from_dict(json.loads(json.dumps(good.to_dict()))) == good
    with pytest.raises(SettingsError, match="must be an adapter in adapters") as info:
        _settings(rollouts={"sql": {"sql--v1": 90, "sql--v3": 10}})
    assert info.value.field_name == "rollouts.sql.sql--v3"
    for name in ("m", "sql--v1"):
        with pytest.raises(SettingsError, match="no base model"):
            _settings(rollouts={name: WEIGHTS})
    with pytest.raises(SettingsError, match="must belong to one rollout"):
        _settings(rollouts={"sql": WEIGHTS, "other": {"sql--v2": 100}})
