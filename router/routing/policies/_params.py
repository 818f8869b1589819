"""Turning `PolicySettings.params` into a policy's frozen config, with errors that name
`policy.params.<name>`, the value and what is allowed."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from router.settings import SettingsError

T = TypeVar("T")


def param_names(config_cls: type) -> list[str]:
    """The parameters `config_cls` takes (its init fields), sorted."""
    return sorted(f.name for f in dataclasses.fields(config_cls) if f.init)


def parse_params(config_cls: type[T], params: Any, kind: str) -> T:
    """Build `config_cls` from a params mapping; unknown names are errors, never ignored."""
    if not isinstance(params, Mapping):
        raise SettingsError("policy.params", params, "must be a mapping of parameter names to values")
    allowed = param_names(config_cls)
    for name, value in params.items():
        if name not in allowed:
            names = ", ".join(allowed) or "none"
            raise SettingsError(f"policy.params.{name}", value,
                                f"is not a parameter of policy '{kind}'; allowed: {names}")
    return config_cls(**params)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def require_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> None:
    """An integer in [minimum, maximum]."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    ok = ok and (maximum is None or value <= maximum)
    if not ok:
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise SettingsError(f"policy.params.{name}", value, f"must be an integer >= {minimum}{upper}")


def require_number(name: str, value: Any, *, minimum: float, above: bool = False) -> None:
    """A finite number >= minimum (or > minimum when `above`)."""
    ok = _is_number(value) and (value > minimum if above else value >= minimum)
    if not ok:
        relation = ">" if above else ">="
        raise SettingsError(f"policy.params.{name}", value, f"must be a finite number {relation} {minimum}")
