"""Build frozen config dataclasses from plain YAML/JSON values, driven by their type hints.

Keys are the camelCase form of the field names. Unknown keys are refused (a typo never loses
a setting silently), missing required keys are named, and every type mismatch names the full
key. Errors raised by a dataclass's `__post_init__` name the camelCase field; `build`
qualifies them with the section's key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from infra.errors import ConfigError, join_key

_UNITS = {"gib": "GiB", "gb": "GB"}  # unit suffixes keep their usual spelling: diskGiB, cpuBufferGB


def camel(name: str) -> str:
    """`tensor_parallel_size` -> `tensorParallelSize`."""
    head, *rest = name.split("_")
    return head + "".join(_UNITS.get(part, part[:1].upper() + part[1:]) for part in rest)


def config_keys(cls: type) -> dict[str, dataclasses.Field]:
    """The camelCase config keys of a config dataclass, with their fields."""
    return {camel(f.name): f for f in dataclasses.fields(cls) if f.init and f.metadata.get("config", True)}


def build(cls: type, raw: Any, key: str) -> Any:
    """An instance of the dataclass `cls` from the mapping `raw` found at config key `key`."""
    if not isinstance(raw, Mapping):
        raise ConfigError(key, raw, "must be a mapping")
    fields = config_keys(cls)
    unknown = sorted(set(raw) - set(fields), key=str)
    if unknown:
        raise ConfigError(join_key(key, str(unknown[0])), raw[unknown[0]],
                          f"is not a known key; allowed keys: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in raw:
            kwargs[f.name] = convert(hints[f.name], raw[name], join_key(key, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(join_key(key, name), None, "is required")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.under(key) from None


def convert(hint: Any, value: Any, key: str) -> Any:
    """`value` converted to the type `hint`, or a `ConfigError` naming `key`."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return _convert_optional(hint, value, key)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(key, value, f"must be one of {', '.join(map(str, allowed))}")
        return value
    if origin is tuple:
        return _convert_tuple(hint, value, key)
    if origin in (dict, Mapping):
        return _convert_mapping(hint, value, key)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    return _convert_scalar(hint, value, key)


def _convert_optional(hint: Any, value: Any, key: str) -> Any:
    inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if value is None:
        return None
    return convert(inner[0], value, key)


def _convert_tuple(hint: Any, value: Any, key: str) -> tuple:
    if not isinstance(value, list | tuple):
        raise ConfigError(key, value, "must be a list")
    item = typing.get_args(hint)[0]
    return tuple(convert(item, v, f"{key}[{i}]") for i, v in enumerate(value))


def _convert_mapping(hint: Any, value: Any, key: str) -> dict:
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "must be a mapping")
    item = typing.get_args(hint)[1]
    out = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise ConfigError(key, k, "must have string keys")
        out[k] = convert(item, v, join_key(key, k))
    return out


_SCALARS: dict[type, tuple[tuple[type, ...], str]] = {
    bool: ((bool,), "must be true or false"),
    int: ((int,), "must be an integer"),
    float: ((int, float), "must be a number"),
    str: ((str,), "must be a string (quote numbers such as versions in YAML)"),
}


def _convert_scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is Any:
        return value
    accepted, allowed = _SCALARS[hint]
    if isinstance(value, bool) and hint is not bool or not isinstance(value, accepted):
        raise ConfigError(key, value, allowed)
    return float(typing.cast(float, value)) if hint is float else value  # an int or a float here
