"""The policy registry: kinds, params validated by each policy's own config, errors that name
`policy.params.<name>`, the value and what is allowed."""

from __future__ import annotations

import pytest

from router.routing.policies.least_load import LeastLoadPolicy
from router.routing.policies.prefix import PrefixPolicy
from router.routing.policies.registry import DEFAULT_KIND, POLICY_KINDS, build_policy, takes_param
from router.routing.policies.round_robin import RoundRobinPolicy
from router.routing.policies.session import SessionPolicy
from router.settings import PolicySettings, RouterSettings, SettingsError


def test_every_kind_builds_its_policy_class() -> None:
    """Each registered kind builds the policy whose `kind` it is."""
    expected = {"round_robin": RoundRobinPolicy, "least_load": LeastLoadPolicy,
                "session": SessionPolicy, "prefix": PrefixPolicy}
    assert set(POLICY_KINDS) == set(expected)
    for kind, cls in expected.items():
        policy = build_policy(PolicySettings(kind=kind))
        assert type(policy) is cls
        assert policy.kind == kind


def test_the_default_settings_build_the_prefix_policy() -> None:
    """`PolicySettings()` and the router's defaults mean `prefix`."""
    assert DEFAULT_KIND == "prefix"
    assert isinstance(build_policy(PolicySettings()), PrefixPolicy)
    settings = RouterSettings.from_dict({"engines": [{"url": "http://e:8000"}]})
    assert isinstance(build_policy(settings.policy), PrefixPolicy)


def test_params_reach_the_policy_config() -> None:
    """Given params land in the policy's config; the others keep their defaults."""
    policy = build_policy(PolicySettings(kind="prefix", params={"placement_tokens": 4096, "load_factor": 2}))
    assert policy.config.placement_tokens == 4096
    assert policy.config.load_factor == 2
    assert policy.config.min_hit_tokens == 128
    session = build_policy(PolicySettings(kind="session", params={"virtual_nodes": 10}))
    assert session.config.virtual_nodes == 10


def test_an_unknown_kind_lists_the_allowed_kinds() -> None:
    """An unknown kind names `policy.kind`, the value and every allowed kind."""
    with pytest.raises(SettingsError) as caught:
        build_policy(PolicySettings(kind="random"))
    assert caught.value.field_name == "policy.kind"
    assert "'random'" in str(caught.value)
    for kind in POLICY_KINDS:
        assert kind in str(caught.value)


@pytest.mark.parametrize("kind", ["round_robin", "least_load", "session", "prefix"])
def test_an_unknown_param_is_rejected_with_the_allowed_names(kind: str) -> None:
    """An unknown parameter is an error naming policy.params.<name> and listing what is allowed."""
    with pytest.raises(SettingsError) as caught:
        build_policy(PolicySettings(kind=kind, params={"colour": "blue"}))
    assert caught.value.field_name == "policy.params.colour"
    assert "'blue'" in str(caught.value)
    assert f"not a parameter of policy '{kind}'" in str(caught.value)
    if kind == "session":
        assert "load_factor, load_floor, virtual_nodes" in str(caught.value)
    if kind == "round_robin":
        assert "allowed: none" in str(caught.value)


def test_params_must_be_a_mapping() -> None:
    """Params given as a list are rejected naming policy.params."""
    with pytest.raises(SettingsError) as caught:
        build_policy(PolicySettings(kind="prefix", params=["load_factor"]))  # type: ignore[arg-type]
    assert caught.value.field_name == "policy.params"


INVALID = [
    ("session", "virtual_nodes", 0, "integer >= 1 and <= 4096"),
    ("session", "virtual_nodes", 5000, "integer >= 1 and <= 4096"),
    ("session", "virtual_nodes", 1.5, "integer >= 1"),
    ("session", "virtual_nodes", True, "integer >= 1"),
    ("session", "load_factor", 0.9, "finite number >= 1.0"),
    ("session", "load_factor", "high", "finite number >= 1.0"),
    ("session", "load_floor", -1, "finite number >= 0.0"),
    ("prefix", "block_tokens", 8, "integer >= 16"),
    ("prefix", "block_tokens", 40, "multiple of 16"),
    ("prefix", "placement_tokens", 0, "integer >= 1"),
    ("prefix", "min_hit_tokens", -3, "integer >= 1"),
    ("prefix", "load_factor", float("inf"), "finite number >= 1.0"),
    ("prefix", "load_floor", None, "finite number >= 0.0"),
    ("prefix", "rate_window", 0, "integer >= 1"),
    ("prefix", "rate_factor", 0.9, "finite number >= 1.0"),
    ("prefix", "move_factor", float("nan"), "finite number >= 1.0"),
    ("prefix", "move_floor", -1.0, "finite number >= 0.0"),
    ("prefix", "move_tokens", -64, "integer >= 0"),
    ("prefix", "prefill_s_per_token", -1e-6, "finite number >= 0"),
    ("prefix", "cpu_load_s_per_token", "slow", "finite number >= 0"),
    ("prefix", "max_running", 0, "integer >= 1"),
    ("prefix", "queued_request_s", float("nan"), "finite number >= 0"),
    ("prefix", "running_request_s", -0.1, "finite number >= 0"),
]


@pytest.mark.parametrize(("kind", "name", "value", "allowed"), INVALID)
def test_every_invalid_param_names_itself_its_value_and_the_rule(kind: str, name: str, value: object,
                                                                 allowed: str) -> None:
    """Each invalid parameter value raises SettingsError with policy.params.<name>, the value, the rule."""
    with pytest.raises(SettingsError) as caught:
        build_policy(PolicySettings(kind=kind, params={name: value}))
    assert caught.value.field_name == f"policy.params.{name}"
    assert allowed in str(caught.value)
    assert repr(value) in str(caught.value)


def test_takes_param_names_a_policys_own_parameters() -> None:
    assert takes_param("prefix", "sole_router") and takes_param("prefix", "move_tokens")
    assert not takes_param("round_robin", "sole_router") and not takes_param("nope", "sole_router")
    assert not takes_param("prefix", "cost")  # derived, not a parameter
