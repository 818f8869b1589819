"""`llm-stack:cluster`: create an EKS cluster (with its VPC), or use an existing one.

```yaml
llm-stack:cluster:
  mode: eks                 # eks | existing (the kubeconfig is the secret llm-stack:kubeconfig)
  name: llm-stack-prod
  kubernetesVersion: "1.35"   # optional: the newest version in EKS standard support (infra/aws/versions.py)
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

CLUSTER_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
"""The retention periods CloudWatch Logs accepts (PutRetentionPolicy)."""
DOCUMENTATION_CIDRS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
"""RFC 5737's documentation ranges: a stack file that still holds one was copied, not configured."""
EXAMPLE_ACCOUNT = "123456789012"
"""The account id AWS's documentation uses in example ARNs."""
SET_HINT = "pulumi config set --path 'llm-stack:"
_PTC_SECRET = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:ecr-pullthroughcache/[\w/+=.@-]+$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_MINOR = re.compile(r"^1\.\d{1,2}$")
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
    """CIDRs allowed to reach a public endpoint; required when `endpointPublicAccess` is true, and
    never a documentation range (set per account: `pulumi config set --path ...`)."""
    admin_principal_arns: tuple[str, ...] = ()
    """IAM roles/users granted cluster-admin through EKS access entries; required, and must include
    the identity that runs `pulumi up` (the cluster grants its creator nothing implicitly)."""
    enabled_log_types: tuple[str, ...] = ("api", "audit", "authenticator")
    """Control-plane log types sent to CloudWatch."""
    log_retention_days: int = 90
    """Days CloudWatch keeps the control-plane logs (one of CloudWatch's retention periods)."""
    interface_endpoints: bool = False
    """Interface VPC endpoints for ECR (api, dkr) and STS in every private subnet, so image pulls and
    IRSA calls skip the NAT gateways; each costs about $0.01 per zone-hour plus $0.01/GB (the
    `capacity` output prices them). The S3 gateway endpoint (free) is always there."""
    docker_hub_credential_arn: str | None = None
    """A Secrets Manager secret `ecr-pullthroughcache/...` holding Docker Hub credentials: creates
    an ECR pull-through cache (`<account>.dkr.ecr.<region>.amazonaws.com/docker-hub/...`) so image
    pulls avoid Docker Hub's anonymous rate limits. None: no cache."""

    def __post_init__(self) -> None:
        require(bool(_REGION.match(self.region)), "region", self.region,
                "must be an AWS region like us-east-1")
        _check_vpc_cidr(self.vpc_cidr)
        _check_zones(self.region, self.availability_zones)
        _check_endpoint(self)
        _check_admins(self.admin_principal_arns)
        for i, log in enumerate(self.enabled_log_types):
            require(log in CLUSTER_LOG_TYPES, f"enabledLogTypes[{i}]", log,
                    f"must be one of {', '.join(CLUSTER_LOG_TYPES)}")
        cache = self.docker_hub_credential_arn
        require(cache is None or bool(_PTC_SECRET.match(cache)), "dockerHubCredentialArn", cache,
                "must be a Secrets Manager secret ARN named ecr-pullthroughcache/... (ECR's rule)")
        require(cache is None or cache.split(":")[3] == self.region, "dockerHubCredentialArn", cache,
                f"must be a secret in the cluster's region {self.region} (ECR reads it from the registry's "
                "own account and region)")
        require(self.log_retention_days in LOG_RETENTION_DAYS, "logRetentionDays", self.log_retention_days,
                f"must be one of CloudWatch's periods ({', '.join(map(str, LOG_RETENTION_DAYS))})")


def _check_zones(region: str, zones: tuple[str, ...]) -> None:
    require(2 <= len(zones) <= 4 and len(set(zones)) == len(zones), "availabilityZones", list(zones),
            "must list 2 to 4 distinct zones")
    for i, zone in enumerate(zones):
        require(zone.startswith(region) and len(zone) == len(region) + 1, f"availabilityZones[{i}]", zone,
                f"must be a zone of region {region} (e.g. {region}a)")


def _check_endpoint(eks: EksConfig) -> None:
    require(eks.endpoint_public_access or eks.endpoint_private_access, "endpointPublicAccess",
            eks.endpoint_public_access, "or endpointPrivateAccess must be true")
    require(not eks.endpoint_public_access or bool(eks.public_access_cidrs), "publicAccessCidrs", [],
            f"is required with a public endpoint: the CIDRs allowed to reach it (no 0.0.0.0/0 by default): "
            f"{SET_HINT}cluster.eks.publicAccessCidrs[0]' 198.18.7.0/24 (your own range)")
    for i, cidr in enumerate(eks.public_access_cidrs):
        network = _check_cidr(f"publicAccessCidrs[{i}]", cidr)
        docs = [doc for doc in DOCUMENTATION_CIDRS if network.overlaps(ipaddress.IPv4Network(doc))]
        require(not docs, f"publicAccessCidrs[{i}]", cidr,
                f"is a documentation example ({', '.join(docs)}, RFC 5737) nobody deploys from: set your own")


def _check_admins(arns: tuple[str, ...]) -> None:
    require(bool(arns), "adminPrincipalArns", [],
            "is required: the IAM roles/users that administer the cluster through EKS access entries, "
            f"including the identity that runs `pulumi up`: {SET_HINT}cluster.eks.adminPrincipalArns[0]' "
            "arn:aws:iam::<account>:role/<role>")
    for i, arn in enumerate(arns):
        require(bool(_ARN.match(arn)), f"adminPrincipalArns[{i}]", arn, "must be an IAM role or user ARN")
        require(f":{EXAMPLE_ACCOUNT}:" not in arn, f"adminPrincipalArns[{i}]", arn,
                f"names the documentation example account {EXAMPLE_ACCOUNT}: use your own account's")


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
    kubernetes_version: str | None = None
    """Kubernetes minor version (`1.N`), judged by the dated table in `infra/aws/versions.py`: one
    EKS no longer creates is refused, one newer than the table deploys with a warning. None: the
    newest version in EKS standard support today."""
    system_node_pool: str = "system"
    """Node pool (no GPU) for the router, LMCache server, monitoring and the benchmark Job."""
    eks: EksConfig | None = None
    """Required with mode `eks`, forbidden with `existing`."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags on every AWS resource (besides `llm-stack:stack`)."""

    def __post_init__(self) -> None:
        dns_label("name", self.name, max_len=100)
        version = self.kubernetes_version
        require(version is None or bool(_MINOR.match(version)), "kubernetesVersion", version,
                "must be a Kubernetes minor version like \"1.35\" (quoted, so YAML keeps it a string)")
        require((self.eks is not None) == (self.mode == "eks"), "eks", self.eks,
                "must be set when mode is 'eks' and absent when mode is 'existing'")
