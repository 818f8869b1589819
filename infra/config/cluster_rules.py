"""Cross-field rules of the cluster and node-pool sections (EKS versions, zones, exposure).

Each rule takes the parsed `StackConfig` and raises `ConfigError` with the full key to change;
`infra.config.rules.RULES` runs them with the others, before any resource exists.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.aws.versions import EKS_VERSIONS, TABLE_DATE, creatable, status_of
from infra.config.stack import StackConfig
from infra.errors import NAMESPACE, require


def key(path: str) -> str:
    """The full config key of `path`."""
    return f"{NAMESPACE}:{path}"


def _kubernetes_version(config: StackConfig) -> None:
    """EKS creates clusters only on versions in standard or extended support on the day (a version
    newer than the table is assumed in standard support: `versions.untabled_warning`)."""
    if config.cluster.mode != "eks":
        return
    version = config.cluster.kubernetes_version or ""
    entry = EKS_VERSIONS.get(version)
    status = status_of(version, config.today)
    usable = ", ".join(creatable(config.today)) or f"none: refresh the table of {TABLE_DATE}"
    if status == "ended":
        ended = (f"its extended support ended on {entry.extended_end.isoformat()}" if entry
                 else f"it is older than every version still supported on {TABLE_DATE.isoformat()}")
        require(False, key("cluster.kubernetesVersion"), version,
                f"is no longer created by EKS ({ended}); use one of {usable}")
    if entry is not None:  # only a row has a release date ahead
        require(status != "unreleased", key("cluster.kubernetesVersion"), version,
                f"is not released on EKS until {entry.released.isoformat()}; use one of {usable}")


def _pool_zones(config: StackConfig) -> None:
    """A pool's zones must be zones of the cluster's VPC (each has one private subnet)."""
    eks = config.cluster.eks
    if eks is None:
        return
    for name, pool in config.node_pools.items():
        for i, zone in enumerate(pool.availability_zones):
            require(zone in eks.availability_zones, key(f"nodePools.{name}.availabilityZones[{i}]"), zone,
                    f"must be one of cluster.eks.availabilityZones ({', '.join(eks.availability_zones)})")


def _router_exposure(config: StackConfig) -> None:
    """A load balancer needs the AWS Load Balancer Controller this stack installs (mode eks), and a
    public one needs API keys (engines behind the router take none)."""
    kind = config.router.exposure.kind
    require(kind == "cluster" or config.cluster.mode == "eks", key("router.exposure.kind"), kind,
            "must be cluster with cluster.mode existing (internal/public NLBs need the AWS Load Balancer "
            "Controller that mode eks installs)")
    require(kind != "public" or config.router.require_api_keys, key("router.exposure.kind"), kind,
            "must not be public while router.requireApiKeys is false (anyone could use the engines)")


CLUSTER_RULES: tuple[Callable[[StackConfig], None], ...] = (
    _kubernetes_version, _pool_zones, _router_exposure,
)
"""The cluster section's rules, in the order they run."""
