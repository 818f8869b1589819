"""The pack's configuration: one frozen value built from the policy config Pulumi hands each
policy (`--policy-pack-config FILE`), which `llm-stack guardrails config --stack ENV` writes
from the `guardrails:` keys of `Pulumi.<env>.yaml`. Defaults name this project's own
contracts (labels, GPU resource, taint), so a bare `--policy-pack` run checks our stack."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts import LABEL_ROLE, ROLE_ENGINE, ROLE_ROUTER
from policies.guardrails.errors import GuardrailConfigError

GPU_RESOURCE = "nvidia.com/gpu"
"""The extended resource NVIDIA's device plugin advertises (and the GPU pools' taint key)."""


@dataclass(frozen=True, kw_only=True)
class GuardrailConfig:
    """Everything a guardrail may be configured with (camelCase keys in the pack's config)."""

    gpu_budget_usd_per_hour: float | None = None
    """`gpuBudgetUsdPerHour`: the most the GPU pools may cost per hour at their max size (None: no budget)."""
    instance_hourly_usd: Mapping[str, float] = field(default_factory=dict)
    """`instanceHourlyUsd`: on-demand price per hour of each GPU instance type the stack uses."""
    allowed_registries: tuple[str, ...] = ()
    """`allowedRegistries`: allowed image prefixes (`ghcr.io/llm-stack/`, `docker.io/lmcache/`); () any."""
    monitoring_namespaces: tuple[str, ...] = ("monitoring",)
    """`monitoringNamespaces`: namespaces whose pods may reach the engines (Prometheus)."""
    gpu_taint_key: str = GPU_RESOURCE
    """`gpuTaintKey`: the taint GPU nodes carry and GPU pods must tolerate."""
    role_label: str = LABEL_ROLE
    """`roleLabel`: the pod label naming a pod's role."""
    engine_role: str = ROLE_ENGINE
    """`engineRole`: the role label value of inference engines."""
    router_role: str = ROLE_ROUTER
    """`routerRole`: the role label value of the router (the only in-namespace client of engines)."""
    today: dt.date | None = None
    """`today` (ISO date): the date Kubernetes support windows are judged at; the shells (pack,
    CLI) set it to the run's date when the config does not (None: not judged)."""

    def __post_init__(self) -> None:
        if self.gpu_budget_usd_per_hour is not None and self.gpu_budget_usd_per_hour <= 0:
            raise GuardrailConfigError("gpuBudgetUsdPerHour", self.gpu_budget_usd_per_hour, "must be > 0")
        for name, price in self.instance_hourly_usd.items():
            if price <= 0:
                raise GuardrailConfigError(f"instanceHourlyUsd.{name}", price, "must be > 0")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GuardrailConfigError(key, value, "must be a number")
    return float(value)


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value or ()):
        raise GuardrailConfigError(key, value, "must be a list of strings")
    return tuple(value or ())


def _prices(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise GuardrailConfigError("instanceHourlyUsd", value, "must map instance types to prices")
    return {str(k): _number(f"instanceHourlyUsd.{k}", v) for k, v in value.items()}


def _date(value: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise GuardrailConfigError("today", value, "must be an ISO date (YYYY-MM-DD)") from None


_READERS = {
    "gpuBudgetUsdPerHour": ("gpu_budget_usd_per_hour", _number),
    "instanceHourlyUsd": ("instance_hourly_usd", lambda _k, v: _prices(v)),
    "allowedRegistries": ("allowed_registries", _strings),
    "monitoringNamespaces": ("monitoring_namespaces", _strings),
    "gpuTaintKey": ("gpu_taint_key", lambda _k, v: str(v)),
    "roleLabel": ("role_label", lambda _k, v: str(v)),
    "engineRole": ("engine_role", lambda _k, v: str(v)),
    "routerRole": ("router_role", lambda _k, v: str(v)),
    "today": ("today", lambda _k, v: _date(v)),
}
CONFIG_KEYS = tuple(_READERS)
"""Every key the pack's config may carry."""


def config_from_mapping(raw: Mapping[str, Any]) -> GuardrailConfig:
    """A `GuardrailConfig` from camelCase keys; `enforcementLevel` (Pulumi's own) is ignored,
    any other unknown key is an error naming the allowed ones."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "enforcementLevel" or value is None:
            continue
        if key not in _READERS:
            raise GuardrailConfigError(key, value, f"is not a known key; allowed: {', '.join(CONFIG_KEYS)}")
        attr, read = _READERS[key]
        values[attr] = read(key, value)
    return GuardrailConfig(**values)
