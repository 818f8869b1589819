"""Docker Hub images pulled through the stack's ECR pull-through cache (pure rewrites and the
transformation that applies them).

Without the cache every node pulls docker.io images anonymously through the VPC's NAT
address(es), and Docker Hub allows 10 unauthenticated pulls per hour per IPv4 address
(docker/docs content/manuals/docker-hub/usage): one node replacement pulls the engine image,
Valkey, aws-cli and Grafana. With `cluster.eks.dockerHubCredentialArn` set, every Docker Hub
reference in a pod template (engines, LMCache server, model-store init containers, anything
else) and Grafana's images in kube-prometheus-stack are rewritten to
`<account>.dkr.ecr.<region>.amazonaws.com/docker-hub/<repository>:<tag>` (official images under
`docker-hub/library/`), the ECR user guide's pull-through form (`registry.py`).

The account is the credential secret's: ECR requires the Secrets Manager secret in the
registry's own account and region (CreatePullThroughCacheRule), so the prefix is known from
the config alone. References to any other registry are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

from infra.aws.registry import mirror_prefix
from stack_components.monitoring.helm import KUBE_PROMETHEUS_STACK

DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
POD_KINDS = {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet",
             "kubernetes:apps/v1:DaemonSet", "kubernetes:batch/v1:Job"}
GRAFANA_IMAGES = ("image", "initChownData.image", "downloadDashboardsImage")
"""The grafana chart's Docker Hub images (values.yaml: `<path>.registry: docker.io`) a deploy runs."""
RELEASE = "kubernetes:helm.sh/v3:Release"


def mirror_for(credential_arn: str) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/docker-hub/` from the cache's credential secret ARN
    (`arn:aws:secretsmanager:<region>:<account>:secret:ecr-pullthroughcache/...`)."""
    _, _, _, region, account, *_ = credential_arn.split(":")
    return mirror_prefix(account, region)


def docker_hub_repository(image: str) -> str | None:
    """The Docker Hub repository path of `image` (`library/` added to an official image), or None
    when `image` names another registry (a first component with '.', ':' or 'localhost')."""
    first, slash, rest = image.partition("/")
    if slash and first in DOCKER_HUB_HOSTS:
        image = rest
    elif slash and ("." in first or ":" in first or first == "localhost"):
        return None
    return image if "/" in image else f"library/{image}"


def through_cache(image: str, mirror: str) -> str:
    """`image` through the cache at `mirror` if it is a Docker Hub image, else unchanged."""
    repository = docker_hub_repository(image)
    return image if repository is None else f"{mirror}{repository}"


def _container(container: Any, mirror: str) -> Any:
    if isinstance(container, dict) and isinstance(container.get("image"), str):
        return container | {"image": through_cache(container["image"], mirror)}
    return container


def mirror_pod_template(spec: dict[str, Any], mirror: str) -> dict[str, Any]:
    """A workload spec with every container's and init container's image through the cache."""
    template = dict(spec.get("template") or {})
    pod = dict(template.get("spec") or {})
    for field in ("containers", "initContainers"):
        if isinstance(pod.get(field), list):
            pod[field] = [_container(c, mirror) for c in pod[field]]
    return spec | {"template": template | {"spec": pod}}


def grafana_registry_values(mirror: str) -> dict[str, Any]:
    """kube-prometheus-stack values pointing Grafana's Docker Hub images at the cache (the chart
    joins `<registry>/<repository>:<tag>`, so the registry may carry the cache's path)."""
    registry = mirror.rstrip("/")
    grafana: dict[str, Any] = {}
    for path in GRAFANA_IMAGES:
        node = grafana
        for part in path.split("."):
            node = node.setdefault(part, {})
        node["registry"] = registry
    return {"grafana": grafana}


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, mappings recursively (extra wins on leaves)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) \
            else value
    return out


def mirror_images(mirror: str) -> Callable[[pulumi.ResourceTransformationArgs],
                                          pulumi.ResourceTransformationResult | None]:
    """A stack transformation sending Docker Hub pulls through the cache at `mirror`."""
    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        props: dict[str, Any] = dict(args.props)
        if args.type_ in POD_KINDS and isinstance(props.get("spec"), dict):
            props["spec"] = mirror_pod_template(props["spec"], mirror)
        elif args.type_ == RELEASE and props.get("chart") == KUBE_PROMETHEUS_STACK.name:
            extra = grafana_registry_values(mirror)
            props["values"] = pulumi.Output.from_input(props.get("values") or {}).apply(
                lambda v: deep_merge(v, extra))
        else:
            return None
        return pulumi.ResourceTransformationResult(props, args.opts)
    return transform
