"""The one place that turns `PolicySettings` (a `kind` tag and its params) into a policy.

Each policy module owns its frozen config type; `build_policy` validates the params through
it, so every bad parameter raises `SettingsError` naming `policy.params.<name>`, the value
and what is allowed.
"""

from __future__ import annotations

from typing import Any, Final

from router.routing.base import RoutingPolicy
from router.routing.policies._params import param_names, parse_params
from router.routing.policies.least_load import LeastLoadConfig, LeastLoadPolicy
from router.routing.policies.prefix import PrefixConfig, PrefixPolicy
from router.routing.policies.round_robin import RoundRobinConfig, RoundRobinPolicy
from router.routing.policies.session import SessionConfig, SessionPolicy
from router.settings import PolicySettings, SettingsError

_POLICIES: Final[dict[str, tuple[type, Any]]] = {
    RoundRobinPolicy.kind: (RoundRobinConfig, RoundRobinPolicy),
    LeastLoadPolicy.kind: (LeastLoadConfig, LeastLoadPolicy),
    SessionPolicy.kind: (SessionConfig, SessionPolicy),
    PrefixPolicy.kind: (PrefixConfig, PrefixPolicy),
}
POLICY_KINDS: Final[tuple[str, ...]] = tuple(_POLICIES)
DEFAULT_KIND: Final = PrefixPolicy.kind


def build_policy(settings: PolicySettings) -> RoutingPolicy:
    """A fresh policy of `settings.kind` configured by `settings.params`."""
    entry = _POLICIES.get(settings.kind)
    if entry is None:
        raise SettingsError("policy.kind", settings.kind, f"must be one of {', '.join(POLICY_KINDS)}")
    config_cls, policy_cls = entry
    return policy_cls(parse_params(config_cls, settings.params, settings.kind))


def takes_param(kind: str, name: str) -> bool:
    """Whether policy `kind` has a parameter `name` (False for an unknown kind)."""
    entry = _POLICIES.get(kind)
    return entry is not None and name in param_names(entry[0])
