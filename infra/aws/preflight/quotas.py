"""EC2 vCPU quotas against what the node pools launch (pure arithmetic, no AWS call).

EC2 limits running instances per region in vCPUs, one Service Quotas code per instance class
and purchase option. A new account's P quota is 0: a p4de pool then never gets a node, and a
node group created with `desiredSize >= 1` fails after EKS has waited for it. The codes are
the Service Quotas console's (service `ec2`), as AWS's quota pages and several independent
tools list them: "Running On-Demand P instances" L-417A185B, "All P Spot Instance Requests"
L-7212CCBC, "Running On-Demand G and VT instances" L-DB2E81BA, "All G and VT Spot Instance
Requests" L-3819A6DF, "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
L-1216C47A, "All Standard ... Spot Instance Requests" L-34B43A08.

Capacity Block pools are not checked here: a block is bought for its instances up front.
The quota counts every running instance of the class in the region, this stack's or not; the
check assumes none runs yet, so a passing check on a busy account is a lower bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from infra.aws.preflight.findings import Finding
from infra.config.catalog import INSTANCES
from infra.config.pools import NodePoolConfig

_STANDARD = "Standard (A, C, D, H, I, M, R, T, Z)"
QUOTA_CODES: dict[tuple[str, str], tuple[str, str]] = {
    ("P", "ON_DEMAND"): ("L-417A185B", "Running On-Demand P instances"),
    ("P", "SPOT"): ("L-7212CCBC", "All P Spot Instance Requests"),
    ("G", "ON_DEMAND"): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("G", "SPOT"): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("Standard", "ON_DEMAND"): ("L-1216C47A", f"Running On-Demand {_STANDARD} instances"),
    ("Standard", "SPOT"): ("L-34B43A08", f"All {_STANDARD} Spot Instance Requests"),
}
"""(instance class, purchase option) -> (Service Quotas code, quota name)."""
STANDARD_LETTERS = frozenset("acdhimrtz")
_FAMILY = re.compile(r"^([a-z]+)")


@dataclass(frozen=True, kw_only=True)
class QuotaNeed:
    """What the pools drawing on one quota launch, in vCPUs."""

    code: str
    """Service Quotas code, e.g. L-417A185B."""
    name: str
    """The quota's name in the console."""
    pools: tuple[str, ...]
    """The pools drawing on it."""
    node_vcpus: int
    """The largest single node among them (below this, that pool never gets a node)."""
    desired_vcpus: int
    """At the pools' `desiredSize`: what creating the node groups waits for."""
    max_vcpus: int
    """At the pools' `maxSize`: the autoscaler's ceiling."""


def quota_class(instance_type: str) -> str:
    """`P`, `G` or `Standard` from the family letters (`p4de.24xlarge` -> P, `m6i.xlarge` -> Standard)."""
    match = _FAMILY.match(instance_type)
    letters = match.group(1) if match else ""
    if letters.startswith("p"):
        return "P"
    if letters.startswith("g"):
        return "G"
    if letters[:1] in STANDARD_LETTERS:
        return "Standard"
    raise ValueError(f"no EC2 vCPU quota class known for instance type {instance_type!r}")


def quota_needs(pools: Mapping[str, NodePoolConfig]) -> list[QuotaNeed]:
    """Per quota code, the vCPUs the pools need; Capacity Block pools are left out."""
    grouped: dict[str, list[tuple[str, NodePoolConfig]]] = {}
    for name, pool in pools.items():
        if pool.capacity_type == "CAPACITY_BLOCK":
            continue
        code = QUOTA_CODES[(quota_class(pool.instance_type), pool.capacity_type)][0]
        grouped.setdefault(code, []).append((name, pool))
    names = {code: name for code, name in QUOTA_CODES.values()}
    return [_need(code, names[code], members) for code, members in sorted(grouped.items())]


def _need(code: str, name: str, members: list[tuple[str, NodePoolConfig]]) -> QuotaNeed:
    vcpus = {pool_name: INSTANCES[pool.instance_type].vcpus for pool_name, pool in members}
    return QuotaNeed(
        code=code, name=name, pools=tuple(pool_name for pool_name, _ in members),
        node_vcpus=max(vcpus.values()),
        desired_vcpus=sum(vcpus[n] * p.desired_size for n, p in members),
        max_vcpus=sum(vcpus[n] * p.max_size for n, p in members))


def quota_findings(needs: list[QuotaNeed], quotas: Mapping[str, float | None], region: str) -> list[Finding]:
    """Errors where a quota cannot launch one node or the pools' desired size; warnings where it
    stops the autoscaler below max, or could not be read (None)."""
    return [f for need in needs if (f := _judge(need, quotas.get(need.code), region)) is not None]


def _judge(need: QuotaNeed, value: float | None, region: str) -> Finding | None:
    key = f"nodePools ({', '.join(need.pools)})"
    where = f"quota {need.name} ({need.code}) in {region}"
    ask = (f"request an increase: aws service-quotas request-service-quota-increase --service-code ec2 "
           f"--quota-code {need.code} --region {region} --desired-value {need.max_vcpus}")
    if value is None:
        return Finding.warning(key, f"{where} could not be read; the pools need {need.max_vcpus} vCPUs "
                               "at maxSize")
    if value < max(need.node_vcpus, need.desired_vcpus):
        return Finding.error(key, f"{where} is {value:g} vCPUs: one node needs {need.node_vcpus} and the "
                             f"pools' desiredSize {need.desired_vcpus}; {ask}")
    if value < need.max_vcpus:
        return Finding.warning(key, f"{where} is {value:g} vCPUs, below the {need.max_vcpus} the pools reach "
                               f"at maxSize: the autoscaler stops there; {ask}")
    return None
