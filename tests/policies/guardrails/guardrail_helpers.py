"""Shared fixtures for the guardrail tests: each environment's recorded resources (the golden
`resources.json`, which tests/infra/test_render.py keeps equal to a fresh `llm-stack render`)
and small editors that make one resource bad."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.stackfile import read_stack_file
from policies.guardrails.config import GuardrailConfig, config_from_mapping
from policies.guardrails.model import Finding
from policies.guardrails.objects import Resource, from_recorded
from policies.guardrails.offline import check_resources, pack_settings

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden"
BEFORE_EXTENDED = dt.date(2026, 1, 1)
"""A date when every shipped stack's Kubernetes version was in standard support."""


def records(stack: str) -> list[dict[str, Any]]:
    """A fresh, mutable copy of the stack's recorded resources."""
    return copy.deepcopy(json.loads((GOLDEN / stack / "resources.json").read_text()))


def stack_config(stack: str, **overrides: Any) -> GuardrailConfig:
    """The pack config the stack file's `guardrails:` keys give, plus overrides (camelCase)."""
    settings = pack_settings(read_stack_file(ROOT, stack).config) | {"today": BEFORE_EXTENDED.isoformat()}
    return config_from_mapping(settings | overrides)


def find(recs: list[dict[str, Any]], typ: str, name: str) -> dict[str, Any]:
    """The inputs of the one recorded resource of `typ` whose Pulumi or Kubernetes name is `name`."""
    (hit,) = [
        r
        for r in recs
        if r["type"] == typ and name in (r["name"], (r["inputs"].get("metadata") or {}).get("name"))
    ]
    return hit["inputs"]


def run(recs: list[dict[str, Any]], config: GuardrailConfig) -> list[Finding]:
    """Every finding of the pack over recorded resources."""
    return check_resources([from_recorded(r) for r in recs], config)


def add(recs: list[dict[str, Any]], typ: str, name: str, inputs: dict[str, Any]) -> None:
    """Record one more resource."""
    recs.append(
        {
            "type": typ,
            "name": name,
            "urn": f"urn:pulumi:test::llm-stack::{typ}::{name}",
            "parent": None,
            "custom": True,
            "inputs": inputs,
        }
    )


def resource(typ: str, name: str, props: dict[str, Any]) -> Resource:
    """A standalone resource."""
    return Resource(type=typ, name=name, urn=f"urn:pulumi:test::llm-stack::{typ}::{name}", props=props)


Edit = Callable[[list[dict[str, Any]]], None]
