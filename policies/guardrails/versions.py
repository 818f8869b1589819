"""Kubernetes versions in EKS extended support (advisory): a cluster past its version's end of
standard support pays the extended-support fee per cluster hour and has a fixed auto-upgrade date.

The calendar is the program's own (`infra/aws/versions.py`, dated and sourced there), so the pack
and the config check never disagree about a version."""

from __future__ import annotations

from collections.abc import Iterator

from infra.aws.versions import EKS_VERSIONS, creatable
from policies.guardrails.config import GuardrailConfig
from policies.guardrails.objects import Resource

EKS_CLUSTER = "aws:eks/cluster:Cluster"


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def check_extended_support(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """An EKS cluster runs a Kubernetes version still in standard support."""
    today = config.today
    if res.type != EKS_CLUSTER or res.props.get("version") is None or today is None:
        return
    version = str(res.props.get("version"))
    standard = [v for v in creatable(today) if EKS_VERSIONS[v].status(today) == "standard"]
    fix = f"fix: upgrade to {' or '.join(sorted(standard)) or 'a version in standard support'}"
    entry = EKS_VERSIONS.get(version)
    if entry is None and _minor(version) > max(map(_minor, EKS_VERSIONS)):
        return  # newer than the calendar: assumed standard (the program warns: versions.untabled_warning)
    status = entry.status(today) if entry else "ended"
    if entry is not None and status == "extended":
        yield (
            f"{res.label} runs Kubernetes {version}, in extended support since {entry.standard_end} "
            f"(extra fee per cluster hour; auto-upgraded after {entry.extended_end}); {fix}"
        )
    elif status == "ended":
        yield f"{res.label} runs Kubernetes {version}, past the end of extended support; {fix}"
