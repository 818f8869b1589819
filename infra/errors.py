"""The one exception tree of `infra`: configuration mistakes and render failures.

Every `ConfigError` names the full stack-config key (`llm-stack:models.llama8b.tensorParallelSize`),
the bad value and what is allowed, and is raised before any resource is registered.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "llm-stack"


class InfraError(Exception):
    """Base of every error raised by `infra`."""


def join_key(prefix: str, key: str) -> str:
    """`prefix.key`, or `prefix` + key right after the namespace colon (`llm-stack:cluster`)."""
    if not prefix:
        return key
    return f"{prefix}{key}" if prefix.endswith(":") or key.startswith("[") else f"{prefix}.{key}"


class ConfigError(InfraError, ValueError):
    """An invalid stack-config value: the key, the value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(f"{key} {allowed} (got {value!r})")
        self.key = key
        self.value = value
        self.allowed = allowed

    def under(self, prefix: str) -> ConfigError:
        """The same error with its key qualified by `prefix` (the enclosing section)."""
        return ConfigError(join_key(prefix, self.key), self.value, self.allowed)


class RenderError(InfraError):
    """`llm-stack render` could not render a stack (unknown stack, unreadable file, clash)."""


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise `ConfigError(key, value, allowed)` unless `ok`."""
    if not ok:
        raise ConfigError(key, value, allowed)
