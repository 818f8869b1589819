"""The preflight's read-only AWS calls, as Pulumi invokes of the AWS provider (the deployer's own
credentials and configuration, no second SDK): STS `GetCallerIdentity`, Service Quotas
`GetServiceQuota` and EC2 `DescribeInstanceTypeOfferings`, the last two in the stack's region
(pulumi-aws 7's per-call `region`).
Nothing here creates, changes or registers a resource."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import pulumi_aws as aws

from infra.errors import InfraError

INVOKE_FAILED = "invoke of "
"""How the Pulumi SDK words a failed invoke (`pulumi/runtime/invoke.py` raises a plain Exception)."""


class LookupFailed(InfraError):
    """An AWS lookup the preflight asked for failed (denied, throttled, unknown code)."""


class Lookups(Protocol):
    """What the preflight asks AWS."""

    def caller_arn(self) -> str:
        """The ARN of the identity the AWS provider runs as; `LookupFailed` if it cannot be read."""
        ...

    def quota(self, code: str) -> float:
        """The EC2 Service Quotas value of `code` (vCPUs); `LookupFailed` if it cannot be read."""
        ...

    def offerings(self, instance_types: Sequence[str]) -> dict[str, frozenset[str]]:
        """Instance type -> zones that offer it in the region."""
        ...


T = TypeVar("T")


def _translated(call: Callable[[], T], what: str) -> T:
    try:
        return call()
    except Exception as exc:  # the SDK raises a bare Exception for a failed invoke
        if not str(exc).startswith(INVOKE_FAILED):
            raise
        raise LookupFailed(f"{what}: {exc}") from exc


class AwsLookups:
    """`Lookups` through the AWS provider's data sources."""

    def __init__(self, region: str) -> None:
        self.region = region

    def caller_arn(self) -> str:
        result = _translated(aws.get_caller_identity, "sts GetCallerIdentity")
        if not result.arn:
            raise LookupFailed("sts GetCallerIdentity returned no ARN")
        return str(result.arn)

    def quota(self, code: str) -> float:
        result = _translated(lambda: aws.servicequotas.get_service_quota(
            service_code="ec2", quota_code=code, region=self.region), f"servicequotas GetServiceQuota {code}")
        return float(result.value)

    def offerings(self, instance_types: Sequence[str]) -> dict[str, frozenset[str]]:
        result = _translated(lambda: aws.ec2.get_instance_type_offerings(
            location_type="availability-zone", region=self.region,
            filters=[{"name": "instance-type", "values": sorted(set(instance_types))}]),
            "ec2 DescribeInstanceTypeOfferings")
        zones: dict[str, set[str]] = {}
        for instance_type, zone in zip(result.instance_types, result.locations, strict=True):
            zones.setdefault(instance_type, set()).add(zone)
        return {t: frozenset(zones.get(t, ())) for t in instance_types}
