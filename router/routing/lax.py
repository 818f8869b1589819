"""Request field values read as vLLM reads them (pure): its request models are pydantic 2 in lax
mode, so a boolean field takes `true`, `1`, `"yes"` ..., not only JSON booleans. The router and
the emulator both read fields this way, so neither refuses what vLLM accepts."""

from __future__ import annotations

from typing import Any

TRUE_STRINGS = frozenset(("1", "on", "t", "true", "y", "yes"))
FALSE_STRINGS = frozenset(("0", "off", "f", "false", "n", "no"))
"""The strings pydantic 2 reads as booleans (case-insensitive, surrounding spaces ignored)."""


def as_bool(value: Any) -> bool:
    """`value` as a pydantic lax boolean; ValueError when pydantic would refuse it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_STRINGS or text in FALSE_STRINGS:
            return text in TRUE_STRINGS
    raise ValueError(f"not a boolean: {value!r}")
