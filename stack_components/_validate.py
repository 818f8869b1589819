"""Small validators shared by the Args dataclasses; each raises `ArgsError`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from stack_components.errors import ArgsError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def require(ok: bool, field_name: str, value: Any, allowed: str) -> None:
    """Raise `ArgsError(field_name, value, allowed)` unless `ok`."""
    if not ok:
        raise ArgsError(field_name, value, allowed)


def dns_label(field_name: str, value: str, max_len: int = 63) -> None:
    """A Kubernetes DNS-1123 label (namespaces, Service names, resource keys)."""
    ok = isinstance(value, str) and len(value) <= max_len and bool(_DNS_LABEL.match(value))
    require(
        ok,
        field_name,
        value,
        f"must be a DNS-1123 label: lowercase letters, digits and '-', at most {max_len} characters",
    )


def positive(field_name: str, value: Any) -> None:
    """An int or float > 0 (bools refused)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    require(ok, field_name, value, "must be a number > 0")


def non_negative(field_name: str, value: Any) -> None:
    """An int or float >= 0 (bools refused)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    require(ok, field_name, value, "must be a number >= 0")


def int_in(field_name: str, value: Any, low: int, high: int) -> None:
    """An int within [low, high] (bools refused)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    require(ok, field_name, value, f"must be an integer in {low}..{high}")


def one_of(field_name: str, value: Any, allowed: Iterable[Any]) -> None:
    """One of a fixed set of values."""
    options = tuple(allowed)
    require(value in options, field_name, value, f"must be one of {', '.join(map(str, options))}")


def non_empty(field_name: str, value: Any) -> None:
    """A non-empty, non-blank string."""
    require(isinstance(value, str) and bool(value.strip()), field_name, value, "must be a non-empty string")


def image(field_name: str, value: Any) -> None:
    """A non-empty image reference, or a Pulumi Output of one (an image built in the program)."""
    import pulumi

    if not isinstance(value, pulumi.Output):
        non_empty(field_name, value)


def strings(field_name: str, value: Any) -> None:
    """A non-empty sequence of strings (a container command)."""
    require(bool(value) and all(isinstance(c, str) for c in value), field_name, value,
            "must be a non-empty tuple of strings")


def labels(field_name: str, value: Mapping[str, str]) -> None:
    """Kubernetes label keys (optional DNS prefix + name) and values."""
    require(isinstance(value, Mapping), field_name, value, "must be a mapping of label key to value")
    for key, item in value.items():
        name = key.rsplit("/", 1)[-1] if isinstance(key, str) else ""
        require(
            len(name) <= 63 and bool(_LABEL_KEY_NAME.match(name)),
            f"{field_name}[{key!r}]",
            key,
            "must be a valid label key",
        )
        require(
            isinstance(item, str) and len(item) <= 63 and bool(_LABEL_VALUE.match(item)),
            f"{field_name}[{key!r}]",
            item,
            "must be a valid label value (<= 63 alphanumerics, '-_.')",
        )
