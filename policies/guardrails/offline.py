"""Run the pack with no Pulumi CLI: on the resources `llm-stack render` records under the mock
runtime, with the pack's config read from the stack file's `guardrails:` keys (the same values
`policy_pack_config` hands `pulumi preview --policy-pack-config`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from policies.guardrails.config import GuardrailConfig, config_from_mapping
from policies.guardrails.model import Finding, Guardrail, evaluate
from policies.guardrails.objects import Resource, from_recorded
from policies.guardrails.registry import GUARDRAILS

CONFIG_NAMESPACE = "guardrails:"
"""The pack's keys in `Pulumi.<env>.yaml` (`guardrails:gpuBudgetUsdPerHour`); the program never reads them."""


def pack_settings(stack_config: Mapping[str, str]) -> dict[str, Any]:
    """The `guardrails:` keys of a stack's config (text values as the CLI passes them), decoded."""
    from infra.config.load import decode_value

    return {
        key.removeprefix(CONFIG_NAMESPACE): decode_value(value)
        for key, value in stack_config.items()
        if key.startswith(CONFIG_NAMESPACE)
    }


def policy_pack_config(
    settings: Mapping[str, Any], guardrails: Iterable[Guardrail] = GUARDRAILS
) -> dict[str, Any]:
    """The `--policy-pack-config` document: each policy gets the settings it declares it reads,
    and its own enforcement level spelled out. Validated first, so a bad value fails here with
    its key rather than inside the preview."""
    config_from_mapping(settings)
    return {
        rail.name: {"enforcementLevel": rail.level}
        | {k: settings[k] for k in rail.config_keys if k in settings}
        for rail in guardrails
        if any(k in settings for k in rail.config_keys)
    }


def check_resources(resources: Sequence[Resource], config: GuardrailConfig) -> list[Finding]:
    """Every finding of the whole pack."""
    return evaluate(GUARDRAILS, resources, config)


def check_records(records: Iterable[Mapping[str, Any]], config: GuardrailConfig) -> list[Finding]:
    """The pack over `resources.json` entries."""
    return check_resources([from_recorded(r) for r in records], config)


def check_render_dir(out: Path, config: GuardrailConfig) -> list[Finding]:
    """The pack over a directory `llm-stack render` wrote."""
    return check_records(json.loads((out / "resources.json").read_text()), config)


def with_today(settings: Mapping[str, Any]) -> dict[str, Any]:
    """`settings` with `today` set to the run's UTC date unless given (the shells' one clock read)."""
    import datetime as dt

    return {"today": dt.datetime.now(dt.UTC).date().isoformat()} | dict(settings)


def render_findings(
    project_dir: Path, stack: str, overrides: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Render `stack` under the mock runtime and run the pack with the stack's own settings."""
    from infra.render import resource_records, run_stack
    from infra.stackfile import read_stack_file

    settings = pack_settings(read_stack_file(project_dir, stack).config) | dict(overrides or {})
    records = resource_records(run_stack(project_dir, stack).resources)
    return check_records(records, config_from_mapping(settings))


def format_findings(findings: Sequence[Finding]) -> str:
    """One line per finding, mandatory first: `[mandatory] policy: message`."""
    ordered = sorted(findings, key=lambda f: (f.level != "mandatory", f.policy))
    return "\n".join(f"[{f.level}] {f.policy}: {f.message}" for f in ordered)
