"""The preflight `pulumi up` (and `pulumi preview`) runs before the first resource: the AWS
lookups in `lookups`, judged by the pure checks in `identity`, `quotas` and `zones`. Errors stop the
program with every problem listed; a lookup that fails is a warning, never a stop (the check
cannot judge what it cannot read). Offline (the mock runtime: `llm-stack render`, the tests)
nothing is asked and the pools get their offline zones, with a message saying so."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.aws.preflight.findings import Finding, raise_errors
from infra.aws.preflight.identity import KEY as ADMINS_KEY
from infra.aws.preflight.identity import admin_findings
from infra.aws.preflight.lookups import LookupFailed, Lookups
from infra.aws.preflight.quotas import quota_findings, quota_needs
from infra.aws.preflight.zones import choose_zones, zone_notes
from infra.config.pools import NodePoolConfig
from infra.config.stack import StackConfig

SKIPPED = ("preflight skipped: no AWS account offline (mock runtime: llm-stack render, tests); "
           "`pulumi preview` and `pulumi up` check the deploying identity, EC2 quotas and zone offerings "
           "before creating anything")


@dataclass(frozen=True, kw_only=True)
class PreflightResult:
    """What the preflight decided and has to say."""

    zones: dict[str, tuple[str, ...]]
    """Each node pool's zones."""
    warnings: tuple[Finding, ...] = ()
    """Findings to log; none stops the deploy."""
    notes: tuple[str, ...] = ()
    """Informational lines (a pool moved to another zone, the check skipped)."""


def start_size_findings(pools: Mapping[str, NodePoolConfig]) -> list[Finding]:
    """A GPU pool created with nodes (desiredSize >= 1) and no reservation waits for EC2 capacity
    that a fixed zone often lacks, and fails: warn, since 0 lets the autoscaler grow it."""
    return [Finding.warning(f"nodePools.{name}.desiredSize", (
        f"{pool.desired_size} × {pool.instance_type} on demand at creation: if the zone has none free the "
        "node group fails; set minSize/desiredSize 0 (the autoscaler adds nodes for pending engines) or "
        "launch into a Capacity Block / capacity reservation (capacityReservationId)"))
        for name, pool in pools.items()
        if pool.gpus and pool.desired_size > 0 and pool.capacity_reservation_id is None]


def offline(config: StackConfig) -> PreflightResult:
    """No lookups: every pool in its offline zones."""
    zones, _ = choose_zones(config.node_pools, _cluster_zones(config), None)
    return PreflightResult(zones=zones, notes=(SKIPPED,))


def preflight(config: StackConfig, lookups: Lookups, *, dry_run: bool = False) -> PreflightResult:
    """Ask, judge, and raise `PreflightError` listing every error; else the zones and warnings.
    In a preview (`dry_run`) a deployer outside the admins is a warning only."""
    eks = config.cluster.eks
    assert eks is not None  # the program runs the preflight in mode 'eks' only
    cluster_zones = _cluster_zones(config)
    findings = _identity_findings(lookups, eks.admin_principal_arns, deploying=not dry_run)
    try:
        offered = lookups.offerings([t for p in config.node_pools.values() for t in p.instance_types])
    except LookupFailed as err:
        offered = None
        findings.append(Finding.warning("nodePools", f"zone offerings not checked: {err}"))
    zones, zone_findings = choose_zones(config.node_pools, cluster_zones, offered)
    findings += zone_findings
    needs = quota_needs(config.node_pools)
    findings += quota_findings(needs, {n.code: _quota(lookups, n.code) for n in needs}, eks.region)
    findings += start_size_findings(config.node_pools)
    raise_errors(findings)
    return PreflightResult(zones=zones, warnings=tuple(findings),
                           notes=tuple(zone_notes(zones, config.node_pools, cluster_zones)))


def _identity_findings(lookups: Lookups, admins: tuple[str, ...], *, deploying: bool) -> list[Finding]:
    try:
        return admin_findings(lookups.caller_arn(), admins, deploying=deploying)
    except LookupFailed as err:
        return [Finding.warning(ADMINS_KEY, f"the deploying identity was not checked against them: {err}")]


def _quota(lookups: Lookups, code: str) -> float | None:
    try:
        return lookups.quota(code)
    except LookupFailed:
        return None


def _cluster_zones(config: StackConfig) -> tuple[str, ...]:
    return config.cluster.eks.availability_zones if config.cluster.eks else ()
