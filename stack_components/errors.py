"""The one exception tree of `stack_components`.

Every error names the field, the bad value and what is allowed, so a stack configuration
mistake reads the same whether it is caught by `infra`'s config model or here.
"""

from __future__ import annotations

from typing import Any


class ComponentError(ValueError):
    """Base of every error raised by `stack_components`."""


class ArgsError(ComponentError):
    """An invalid component argument: names the field, the value and what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str) -> None:
        super().__init__(f"'{field_name}' {allowed} (got {value!r})")
        self.field_name = field_name
        self.value = value
        self.allowed = allowed


class CapacityError(ComponentError):
    """A model that does not fit the GPUs it was given (weights, or one full-length sequence)."""
