"""Building the one `RouterSettings` from a settings file and command-line overrides.

Precedence: flags (or their environment variables, resolved by the CLI) over the file over
the defaults. Pure apart from reading the file; every invalid value raises `SettingsError`
naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from router.settings import RouterSettings, SettingsError


def load_file(path: str) -> dict[str, Any]:
    """A JSON or YAML settings file (as rendered by the `Router` component) as a dict."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError("config", path, f"must be a readable file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SettingsError("config", path, f"must be valid JSON or YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError("config", path, "must hold a mapping of settings")
    return data


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def apply_overrides(data: Mapping[str, Any], *, engines: str | None = None, model: str | None = None,
                    policy: str | None = None, host: str | None = None, port: int | None = None,
                    workers: int | None = None, engine_capacity_tokens: int | None = None,
                    api_keys_file: str | None = None, engines_file: str | None = None) -> dict[str, Any]:
    """`data` with the given (non-None) command-line values laid over it."""
    out = dict(data)
    if engines is not None:
        out["engines"] = [{"url": url} for url in _split(engines)]
        out["discovery"] = out["file_discovery"] = None
    if engines_file is not None:
        out["engines"], out["discovery"] = [], None
        out["file_discovery"] = {**(out.get("file_discovery") or {}), "path": engines_file}
    if model is not None:
        out["models"] = _split(model)
    if policy is not None:
        out["policy"] = {**(out.get("policy") or {}), "kind": policy}
    scalars = {"host": host, "port": port, "workers": workers, "api_keys_file": api_keys_file,
               "default_gpu_cache_tokens": engine_capacity_tokens}
    out.update({key: value for key, value in scalars.items() if value is not None})
    return out


def build_settings(config_file: str | None = None, **overrides: Any) -> RouterSettings:
    """The settings from an optional file plus overrides (see `apply_overrides`)."""
    data = load_file(config_file) if config_file else {}
    return RouterSettings.from_dict(apply_overrides(data, **overrides))
