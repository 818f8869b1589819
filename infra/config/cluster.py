"""`llm-stack:cluster`: create an EKS cluster (with its VPC), or use an existing one.

```yaml
llm-stack:cluster:
  mode: eks                 # eks | existing (the kubeconfig is the secret llm-stack:kubeconfig)
  name: llm-stack-prod
  kubernetesVersion: "1.33"
  systemNodePool: system    # where the router, monitoring and benchmark run (no GPU)
  eks: {region: us-east-1, vpcCidr: 10.20.0.0/16, availabilityZones: [us-east-1a, us-east-1b], ...}
```
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from infra.errors import require

SUPPORTED_KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34")
"""EKS versions in standard support that the rendered manifests are validated against."""
CLUSTER_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")


def dns_label(key: str, value: str, max_len: int = 63) -> None:
    """A DNS-1123 label: lowercase letters, digits and '-'."""
    require(len(value) <= max_len and bool(_NAME.match(value)), key, value,
            f"must be a DNS-1123 label (lowercase letters, digits, '-', at most {max_len} characters)")


@dataclass(frozen=True, kw_only=True)
class EksConfig:
    """A new EKS cluster and the VPC it runs in."""

    region: str
    """AWS region, e.g. `us-east-1`."""
    vpc_cidr: str
    """VPC CIDR, a /16 to /20: private /19-equivalent subnets for pods, small public ones for NAT/ELB."""
    availability_zones: tuple[str, ...]
    """2 to 4 zones of `region`; one private and one public subnet each."""
    nat_gateways: Literal["single", "perAz"] = "single"
    """One NAT gateway (cheap) or one per zone (survives a zone outage)."""
    endpoint_public_access: bool = True
    """Whether the API server is reachable from the internet (limited by `publicAccessCidrs`)."""
    endpoint_private_access: bool = True
    """Whether the API server is reachable from inside the VPC."""
    public_access_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to reach a public endpoint; required when `endpointPublicAccess` is true."""
    admin_principal_arns: tuple[str, ...] = ()
    """IAM roles/users granted cluster-admin through EKS access entries."""
    enabled_log_types: tuple[str, ...] = ("api", "audit", "authenticator")
    """Control-plane log types sent to CloudWatch."""

    def __post_init__(self) -> None:
        require(bool(_REGION.match(self.region)), "region", self.region,
                "must be an AWS region like us-east-1")
        _check_vpc_cidr(self.vpc_cidr)
        zones = self.availability_zones
        require(2 <= len(zones) <= 4 and len(set(zones)) == len(zones), "availabilityZones", list(zones),
                "must list 2 to 4 distinct zones")
        for i, zone in enumerate(zones):
            require(zone.startswith(self.region) and len(zone) == len(self.region) + 1,
                    f"availabilityZones[{i}]", zone, f"must be a zone of region {self.region} (e.g. "
                    f"{self.region}a)")
        require(self.endpoint_public_access or self.endpoint_private_access, "endpointPublicAccess",
                self.endpoint_public_access, "or endpointPrivateAccess must be true")
        require(not self.endpoint_public_access or bool(self.public_access_cidrs), "publicAccessCidrs",
                [], "must list the CIDRs allowed to reach the public endpoint (no 0.0.0.0/0 by default)")
        for i, cidr in enumerate(self.public_access_cidrs):
            _check_cidr(f"publicAccessCidrs[{i}]", cidr)
        for i, arn in enumerate(self.admin_principal_arns):
            require(bool(_ARN.match(arn)), f"adminPrincipalArns[{i}]", arn, "must be an IAM role or user ARN")
        for i, log in enumerate(self.enabled_log_types):
            require(log in CLUSTER_LOG_TYPES, f"enabledLogTypes[{i}]", log,
                    f"must be one of {', '.join(CLUSTER_LOG_TYPES)}")


def _check_cidr(key: str, cidr: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        require(False, key, cidr, "must be an IPv4 CIDR with no host bits set, e.g. 10.0.0.0/16")
        raise


def _check_vpc_cidr(cidr: str) -> None:
    network = _check_cidr("vpcCidr", cidr)
    require(16 <= network.prefixlen <= 20, "vpcCidr", cidr, "must be a /16 to /20 network")
    require(network.is_private, "vpcCidr", cidr, "must be a private (RFC 1918) range")


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """Which cluster the serving stack lands on."""

    mode: Literal["eks", "existing"]
    """`eks`: create VPC + EKS + node groups; `existing`: use the cluster in `llm-stack:kubeconfig`."""
    name: str
    """Cluster name (EKS) or a label for the existing cluster."""
    kubernetes_version: str
    """Kubernetes minor version; manifests are validated against its schema."""
    system_node_pool: str = "system"
    """Node pool (no GPU) for the router, LMCache server, monitoring and the benchmark Job."""
    eks: EksConfig | None = None
    """Required with mode `eks`, forbidden with `existing`."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags on every AWS resource (besides `llm-stack:stack`)."""

    def __post_init__(self) -> None:
        dns_label("name", self.name, max_len=100)
        require(self.kubernetes_version in SUPPORTED_KUBERNETES_VERSIONS, "kubernetesVersion",
                self.kubernetes_version, f"must be one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}")
        require((self.eks is not None) == (self.mode == "eks"), "eks", self.eks,
                "must be set when mode is 'eks' and absent when mode is 'existing'")
