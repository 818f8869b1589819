"""Tags every AWS resource carries, and the Kubernetes discovery tags on subnets."""

from __future__ import annotations

from collections.abc import Mapping


def base_tags(*, stack: str, cluster: str, extra: Mapping[str, str]) -> dict[str, str]:
    """Default tags for the AWS provider (applied to every taggable resource)."""
    return {"llm-stack:stack": stack, "llm-stack:cluster": cluster, "managed-by": "pulumi"} | dict(extra)


def subnet_tags(cluster: str, *, public: bool, name: str) -> dict[str, str]:
    """Tags the AWS load balancer controller and EKS use to pick subnets."""
    role = "kubernetes.io/role/elb" if public else "kubernetes.io/role/internal-elb"
    return {"Name": name, role: "1", f"kubernetes.io/cluster/{cluster}": "shared"}
