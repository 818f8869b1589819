"""Load the stack configuration: a pure parser over plain values, and the one thin reader of
Pulumi's config (the only place `pulumi.Config` data is read)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import date
from typing import Any

from infra.aws.versions import newest_standard
from infra.config.parse import build
from infra.config.rules import check_rules
from infra.config.stack import SECRET_KEYS, SecretRef, StackConfig
from infra.errors import NAMESPACE, ConfigError

PREFIX = f"{NAMESPACE}:"


def parse_stack_config(raw: Mapping[str, Any], *, today: date | None = None) -> StackConfig:
    """The validated `StackConfig` from the `llm-stack:` keys (without the prefix) and their
    values: plain YAML/JSON values, and `SecretRef` for keys set as secrets, judged on `today`
    (EKS version support; default: the current date). An unset `cluster.kubernetesVersion`
    becomes the newest version in EKS standard support on that date.
    Raises `ConfigError` naming the full key on the first invalid value."""
    plain: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECRET_KEYS:
            if not isinstance(value, SecretRef):
                raise ConfigError(PREFIX + key, "[plain text, not shown]",
                                  f"must be a Pulumi secret: pulumi config set --secret {PREFIX}{key} ...")
        elif isinstance(value, SecretRef):
            raise ConfigError(PREFIX + key, "[secret]", "must be plain config, not a secret")
        else:
            plain[key] = value
    config = build(StackConfig, plain, PREFIX)
    day = today or date.today()
    cluster = config.cluster
    if cluster.kubernetes_version is None:
        cluster = dataclasses.replace(cluster, kubernetes_version=newest_standard(day))
    config = dataclasses.replace(config, cluster=cluster, today=day,
                                 secret_keys=frozenset(k for k in raw if k in SECRET_KEYS))
    check_rules(config)
    return config


def decode_value(text: Any) -> Any:
    """A Pulumi config value as the program sees it: structured values are JSON text."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def raw_from_pulumi() -> dict[str, Any]:
    """The `llm-stack:` keys of the running stack's config, secrets as `SecretRef` (never read here)."""
    from pulumi.runtime import config as runtime_config

    values = dict(runtime_config.get_config_env()) | dict(runtime_config.CONFIG.get())
    values = {key.replace(f"{PREFIX}config:", PREFIX, 1): value for key, value in values.items()}
    return {
        key.removeprefix(PREFIX): (SecretRef(key=key.removeprefix(PREFIX))
                                   if runtime_config.is_config_secret(key) else decode_value(value))
        for key, value in sorted(values.items()) if key.startswith(PREFIX)
    }


def load_stack_config() -> StackConfig:
    """The running stack's validated configuration (call once, at the program's start)."""
    return parse_stack_config(raw_from_pulumi())
