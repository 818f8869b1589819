"""The Pulumi shell: each `Guardrail` as a pulumi-policy `ResourceValidationPolicy` or
`StackValidationPolicy` (API of pulumi/pulumi-policy sdk/python/lib/pulumi_policy/policy.py).
The checks stay plain functions; this module only adapts arguments and reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from policies.guardrails.config import config_from_mapping
from policies.guardrails.model import Guardrail
from policies.guardrails.objects import Resource
from policies.guardrails.registry import GUARDRAILS

PACK_NAME = "llm-stack-guardrails"

_STRING = {"type": "string"}
SCHEMA: dict[str, dict[str, Any]] = {
    "gpuBudgetUsdPerHour": {"type": "number", "exclusiveMinimum": 0},
    "instanceHourlyUsd": {"type": "object", "additionalProperties": {"type": "number"}},
    "allowedRegistries": {"type": "array", "items": _STRING},
    "monitoringNamespaces": {"type": "array", "items": _STRING},
    "gpuTaintKey": _STRING,
    "roleLabel": _STRING,
    "engineRole": _STRING,
    "routerRole": _STRING,
    "today": {"type": "string", "format": "date"},
}
"""JSON schema of every config key (each policy declares the keys it reads)."""


def _config(raw: Mapping[str, Any]) -> Any:
    """The policy's config, judged at today's date unless it names one (the one clock read)."""
    return config_from_mapping({"today": dt.datetime.now(dt.UTC).date().isoformat()} | dict(raw))


def _as_resource(item: Any) -> Resource:
    return Resource(type=item.resource_type, name=item.name, urn=item.urn, props=item.props)


def to_pulumi_policy(rail: Guardrail) -> Any:
    """One guardrail as a pulumi-policy policy object."""
    from pulumi_policy import (
        EnforcementLevel,
        PolicyConfigSchema,
        ResourceValidationPolicy,
        StackValidationPolicy,
    )

    schema = (
        PolicyConfigSchema(properties={k: SCHEMA[k] for k in rail.config_keys}) if rail.config_keys else None
    )
    common: dict[str, Any] = {
        "name": rail.name,
        "description": rail.description,
        "config_schema": schema,
        "enforcement_level": EnforcementLevel(rail.level),
    }
    if rail.resource_check is not None:
        check = rail.resource_check

        def validate(args: Any, report: Any) -> None:
            for message in check(_as_resource(args), _config(args.get_config())):
                report(message, None)

        return ResourceValidationPolicy(validate=validate, **common)
    stack_check = rail.stack_check

    def validate_stack(args: Any, report: Any) -> None:
        resources = [_as_resource(r) for r in args.resources]
        assert stack_check is not None  # Guardrail.__post_init__: exactly one check is set
        for urn, message in stack_check(resources, _config(args.get_config())):
            report(message, urn or None)

    return StackValidationPolicy(validate=validate_stack, **common)


def pulumi_policies() -> list[Any]:
    """Every guardrail as a pulumi-policy policy, in pack order."""
    return [to_pulumi_policy(rail) for rail in GUARDRAILS]
