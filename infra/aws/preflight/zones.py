"""Which zones each node pool runs in, from where EC2 offers its instance type (pure).

`DescribeInstanceTypeOfferings` (location type `availability-zone`) says in which of the
account's zones an instance type can be launched at all; p4d/p4de are offered in few zones of
a region. A GPU pool runs in one zone (its engines' model-cache volumes are zonal, and LMCache
traffic across zones is billed): the first of the cluster's zones, in their configured order,
that offers its type. A CPU pool runs in every cluster zone that offers its type. Zones a
pool names itself must offer its type. Offline (no offerings known) the first cluster zone /
every zone, as before.

An offering is not capacity: a zone that offers p4de may still have none free on demand.
Capacity Blocks for ML and On-Demand Capacity Reservations are the way to be sure (README).
"""

from __future__ import annotations

from collections.abc import Mapping

from infra.aws.preflight.findings import Finding
from infra.config.pools import NodePoolConfig, pool_zones

Offerings = Mapping[str, frozenset[str]]
"""Instance type -> the zones (names, as the account sees them) that offer it."""


def choose_zones(pools: Mapping[str, NodePoolConfig], cluster_zones: tuple[str, ...],
                 offered: Offerings | None) -> tuple[dict[str, tuple[str, ...]], list[Finding]]:
    """Each pool's zones, and an error for each pool no usable zone offers (None: offline)."""
    if offered is None:
        return {name: pool_zones(pool, cluster_zones) for name, pool in pools.items()}, []
    chosen: dict[str, tuple[str, ...]] = {}
    findings: list[Finding] = []
    for name, pool in pools.items():
        offering = frozenset().union(*(offered.get(t, frozenset()) for t in pool.instance_types))
        zones, found = _pool_choice(name, pool, cluster_zones, offering)
        chosen[name] = zones
        findings += found
    return chosen, findings


def _pool_choice(name: str, pool: NodePoolConfig, cluster_zones: tuple[str, ...],
                 offering: frozenset[str]) -> tuple[tuple[str, ...], list[Finding]]:
    elsewhere = ", ".join(sorted(offering)) or "none"
    if pool.availability_zones:
        missing = [z for z in pool.availability_zones if z not in offering]
        errors = [Finding.error(f"nodePools.{name}.availabilityZones", f"zone {zone} does not offer "
                                f"{pool.instance_type} (zones that do: {elsewhere})") for zone in missing]
        return pool.availability_zones, errors
    usable = tuple(z for z in cluster_zones if z in offering)
    if not usable:
        return pool_zones(pool, cluster_zones), [Finding.error(
            f"nodePools.{name}.instanceType", f"{pool.instance_type} is offered in none of "
            f"cluster.eks.availabilityZones ({', '.join(cluster_zones)}); zones that offer it: {elsewhere} "
            "(add one to cluster.eks.availabilityZones, or choose another instance type)")]
    return (usable[:1] if pool.gpus else usable), []


def zone_notes(chosen: Mapping[str, tuple[str, ...]], pools: Mapping[str, NodePoolConfig],
               cluster_zones: tuple[str, ...]) -> list[str]:
    """A line for each GPU pool that the offerings moved off the first cluster zone."""
    return [f"node pool {name}: zone {chosen[name][0]} ({pool.instance_type} is not offered in "
            f"{cluster_zones[0]}); pin it with nodePools.{name}.availabilityZones to keep it"
            for name, pool in pools.items()
            if pool.gpus and not pool.availability_zones and chosen[name][:1] != cluster_zones[:1]]
