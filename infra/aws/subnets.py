"""Pure subnet planning: carve a VPC CIDR into one private and one public subnet per zone."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class SubnetPlan:
    """The two subnets of one availability zone."""

    zone: str
    """Availability zone."""
    private_cidr: str
    """Large private subnet (nodes and, with the VPC CNI, every pod IP)."""
    public_cidr: str
    """Small public subnet (NAT gateway, internet-facing load balancers)."""


def plan_subnets(vpc_cidr: str, zones: tuple[str, ...]) -> tuple[SubnetPlan, ...]:
    """Private subnets are the first eighths of the VPC (one per zone, up to 4); public subnets
    are 1/32 slices of the last eighth: a /16 gives /19 private and /24 public subnets, a /20
    gives /23 and /28 (AWS's smallest)."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    eighths = list(vpc.subnets(new_prefix=vpc.prefixlen + 3))
    public = list(eighths[-1].subnets(new_prefix=eighths[-1].prefixlen + 5))
    return tuple(
        SubnetPlan(zone=zone, private_cidr=str(eighths[i]), public_cidr=str(public[i]))
        for i, zone in enumerate(zones)
    )
