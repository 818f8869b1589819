"""The emulator's exception tree: every error it raises on purpose derives from `EmulatorError`."""

from __future__ import annotations

from typing import Any


class EmulatorError(Exception):
    """Base of every error the emulator raises on purpose."""


class ConfigError(EmulatorError, ValueError):
    """An invalid emulator setting; the message names the field, the value and what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str) -> None:
        super().__init__(f"emulator setting '{field_name}' {allowed} (got {value!r})")
        self.field_name = field_name
        self.value = value


class WireError(EmulatorError):
    """A request the OpenAI-compatible server rejects: HTTP status, error type, message."""

    def __init__(self, status: int, message: str, error_type: str = "BadRequestError",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param


def require(ok: bool, name: str, value: Any, allowed: str) -> None:
    """Raise `ConfigError(name, value, allowed)` unless `ok`."""
    if not ok:
        raise ConfigError(name, value, allowed)
