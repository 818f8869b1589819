"""The guardrail pack's one error: a bad pack configuration, naming the key, the value and
what is allowed."""

from __future__ import annotations

from typing import Any


class GuardrailConfigError(ValueError):
    """A policy-pack configuration value that cannot be used."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(f"guardrails config {key!r} {allowed} (got {value!r})")
        self.key = key
        self.value = value
