"""Kubernetes versions in EKS extended support (advisory): a cluster past its version's end of
standard support pays the extended-support fee per cluster hour and has a fixed auto-upgrade date.

Calendar: AWS, "Understand the Kubernetes version lifecycle on EKS" (standard support 14 months
from release, then 12 months extended), dates as listed by the EKS release calendar (mirrored
at endoflife.date/amazon-eks). Add a row when EKS releases a version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from policies.guardrails.config import GuardrailConfig
from policies.guardrails.objects import Resource

EKS_CLUSTER = "aws:eks/cluster:Cluster"
D = dt.date
SUPPORT: dict[str, tuple[dt.date, dt.date]] = {
    # version: (end of standard support, end of extended support)
    "1.29": (D(2025, 3, 23), D(2026, 3, 23)),
    "1.30": (D(2025, 7, 23), D(2026, 7, 23)),
    "1.31": (D(2025, 11, 26), D(2026, 11, 26)),
    "1.32": (D(2026, 3, 23), D(2027, 3, 23)),
    "1.33": (D(2026, 7, 29), D(2027, 7, 29)),
    "1.34": (D(2026, 12, 2), D(2027, 12, 2)),
    "1.35": (D(2027, 3, 27), D(2028, 3, 27)),
}


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def standard_versions(on: dt.date) -> list[str]:
    """Versions in standard support on a date, oldest first."""
    return sorted((v for v, (end, _) in SUPPORT.items() if on <= end), key=_minor)


def check_extended_support(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """An EKS cluster runs a Kubernetes version still in standard support."""
    today = config.today
    if res.type != EKS_CLUSTER or res.props.get("version") is None or today is None:
        return
    version = str(res.props.get("version"))
    fix = f"fix: upgrade to {' or '.join(standard_versions(today)) or 'a version in standard support'}"
    if version in SUPPORT:
        standard_end, extended_end = SUPPORT[version]
        if today > standard_end:
            yield (
                f"{res.label} runs Kubernetes {version}, in extended support since {standard_end} "
                f"(extra fee per cluster hour; auto-upgraded after {extended_end}); {fix}"
            )
    elif _minor(version) < min(map(_minor, SUPPORT)):
        yield f"{res.label} runs Kubernetes {version}, past the end of extended support; {fix}"
