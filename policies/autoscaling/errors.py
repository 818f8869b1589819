"""The one exception of `policies.autoscaling`: an invalid policy value, named."""

from __future__ import annotations

from typing import Any


class PolicyError(ValueError):
    """An invalid autoscaling value: the field, the value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        super().__init__(f"autoscaling '{field}' {allowed} (got {value!r})")
        self.field = field
        self.value = value


def require(ok: bool, field: str, value: Any, allowed: str) -> None:
    """Raise `PolicyError(field, value, allowed)` unless `ok`."""
    if not ok:
        raise PolicyError(field, value, allowed)
