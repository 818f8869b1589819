"""What the preflight found: errors stop `pulumi up` before any resource, warnings are logged."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from infra.errors import NAMESPACE, InfraError


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One finding, naming the config key it is about."""

    level: Literal["error", "warning"]
    """`error` stops the deploy; `warning` is logged."""
    key: str
    """The config key (without the `llm-stack:` prefix) or keys it concerns."""
    message: str
    """What was found and what to do."""

    @classmethod
    def error(cls, key: str, message: str) -> Finding:
        return cls(level="error", key=key, message=message)

    @classmethod
    def warning(cls, key: str, message: str) -> Finding:
        return cls(level="warning", key=key, message=message)

    def text(self) -> str:
        """`llm-stack:<key>: <message>`."""
        return f"{NAMESPACE}:{self.key}: {self.message}"


class PreflightError(InfraError):
    """The account cannot run this stack as configured: every error found, one per line."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.findings = tuple(f for f in findings if f.level == "error")
        lines = "\n".join(f"  - {f.text()}" for f in self.findings)
        count = len(self.findings)
        super().__init__(f"preflight: {count} problem(s), found before any resource was created:\n{lines}")


def raise_errors(findings: Iterable[Finding]) -> None:
    """Raise a `PreflightError` if any finding is an error."""
    found = list(findings)
    if any(f.level == "error" for f in found):
        raise PreflightError(found)
