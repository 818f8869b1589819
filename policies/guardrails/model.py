"""What a guardrail is (a named, described check at an enforcement level) and what it finds.

A check is a plain function: a resource check takes one `Resource` and the config and yields
messages; a stack check takes every resource and yields `(urn, message)` pairs. Every message
names the resource and says how to fix it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from policies.guardrails.config import GuardrailConfig
from policies.guardrails.objects import Resource

Level = Literal["mandatory", "advisory"]
ResourceCheck = Callable[[Resource, GuardrailConfig], Iterable[str]]
StackCheck = Callable[[Sequence[Resource], GuardrailConfig], Iterable[tuple[str, str]]]


@dataclass(frozen=True, kw_only=True)
class Guardrail:
    """One policy of the pack."""

    name: str
    """Policy name (unique in the pack; what `--policy-pack-config` keys on)."""
    description: str
    """One sentence: what must hold."""
    level: Level
    """`mandatory` blocks the update; `advisory` reports it."""
    resource_check: ResourceCheck | None = None
    """Per-resource check (exactly one of the two checks is set)."""
    stack_check: StackCheck | None = None
    """Whole-stack check, for rules that join resources."""
    config_keys: tuple[str, ...] = ()
    """Pack config keys the check reads (its config schema)."""

    def __post_init__(self) -> None:
        if (self.resource_check is None) == (self.stack_check is None):
            raise ValueError(f"guardrail {self.name!r} needs exactly one of resource_check, stack_check")


@dataclass(frozen=True)
class Finding:
    """One violation."""

    policy: str
    level: Level
    urn: str
    message: str


def evaluate(
    guardrails: Iterable[Guardrail], resources: Sequence[Resource], config: GuardrailConfig
) -> list[Finding]:
    """Every violation of `guardrails` in `resources`, in policy order."""
    findings: list[Finding] = []
    for rail in guardrails:
        found: Iterable[tuple[str, str]]
        if rail.resource_check is not None:
            check = rail.resource_check
            found = ((r.urn, m) for r in resources for m in check(r, config))
        else:
            assert rail.stack_check is not None  # __post_init__: exactly one of the two is set
            found = rail.stack_check(resources, config)
        findings += [Finding(rail.name, rail.level, urn, msg) for urn, msg in found]
    return findings
