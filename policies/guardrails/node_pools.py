"""Node pools: every pool has a max size (mandatory); GPU pools stay in one zone, and the GPU
pools at their max size stay within the stack's budget (advisory)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from infra.aws.prices import ON_DEMAND_USD_PER_HOUR
from policies.guardrails.config import GPU_RESOURCE, GuardrailConfig
from policies.guardrails.objects import Resource, dig, mapping, sequence

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ASG = "aws:autoscaling/group:Group"
KARPENTER_NODEPOOL = "karpenter.sh/"  # kubernetes:karpenter.sh/<version>:NodePool
ZONE_LABEL = "topology.kubernetes.io/zone"


def _is_karpenter_pool(res: Resource) -> bool:
    return res.type.startswith(f"kubernetes:{KARPENTER_NODEPOOL}") and res.type.endswith(":NodePool")


def check_max_size(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """EKS node groups and auto scaling groups set a max size; Karpenter NodePools set limits."""
    if res.type == NODE_GROUP:
        size = dig(res.props, "scalingConfig", "maxSize")
        if size is None or float(size) < 1:
            yield f"{res.label} has no scalingConfig.maxSize; fix: set the pool's maxSize (its cost ceiling)"
    elif res.type == ASG and res.props.get("maxSize") is None:
        yield f"{res.label} has no maxSize; fix: set maxSize"
    elif _is_karpenter_pool(res) and not mapping(dig(res.props, "spec", "limits")):
        yield (
            f"{res.label} has no spec.limits, so Karpenter may add nodes without bound; fix: set "
            f"spec.limits ({GPU_RESOURCE}, cpu)"
        )


def is_gpu_node_group(res: Resource, config: GuardrailConfig) -> bool:
    """A managed node group whose nodes carry the GPU taint or an NVIDIA AMI."""
    taints = (mapping(t).get("key") for t in sequence(res.props.get("taints")))
    return res.type == NODE_GROUP and (
        config.gpu_taint_key in taints or "NVIDIA" in str(res.props.get("amiType", "")).upper()
    )


def _karpenter_zones(res: Resource) -> list[str] | None:
    requirements = dig(res.props, "spec", "template", "spec", "requirements")
    for req in map(mapping, sequence(requirements)):
        if req.get("key") == ZONE_LABEL and req.get("operator") == "In":
            return list(sequence(req.get("values")))
    return None


def check_gpu_zones(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """A GPU pool places its nodes in one availability zone: P-instance capacity (and any capacity
    reservation or block) is usually in one zone, and engine, cache-server and LMCache traffic
    across zones is charged per GB (infra/aws keeps GPU pools in one zone by default)."""
    fix = "fix: name one zone for the pool (nodePools.<pool>.availabilityZones) or its capacity reservation"
    subnets = sequence(res.props.get("subnetIds"))
    if is_gpu_node_group(res, config) and len(subnets) > 1:
        yield f"{res.label} is a GPU pool spanning {len(subnets)} subnets (zones); {fix}"
    if _is_karpenter_pool(res):
        zones = _karpenter_zones(res)
        if zones is not None and len(zones) > 1:
            yield f"{res.label} may place GPU nodes in zones {zones}; {fix}"


def _pool_cost(pool: Resource, config: GuardrailConfig) -> tuple[float | None, str]:
    """Cost at max size: `instanceHourlyUsd` where the pack's config names the type, else the
    program's dated price table (infra/aws/prices.py), so the two never disagree by default."""
    prices = {**ON_DEMAND_USD_PER_HOUR, **config.instance_hourly_usd}
    types = [str(t) for t in sequence(pool.props.get("instanceTypes"))]
    size = float(dig(pool.props, "scalingConfig", "maxSize") or 0)
    unpriced = [t for t in types if t not in prices]
    if unpriced or not types:
        return None, ", ".join(unpriced) or "(no instanceTypes)"
    return size * max(prices[t] for t in types), f"{int(size)} x {'/'.join(types)}"


def check_gpu_budget(resources: Sequence[Resource], config: GuardrailConfig) -> Iterator[tuple[str, str]]:
    """The GPU node groups at their max size cost at most `gpuBudgetUsdPerHour`."""
    if config.gpu_budget_usd_per_hour is None:
        return
    total, parts = 0.0, []
    for pool in (r for r in resources if is_gpu_node_group(r, config)):
        cost, what = _pool_cost(pool, config)
        if cost is None:
            yield (
                pool.urn,
                (
                    f"{pool.label}: no hourly price for {what}, so the GPU budget cannot be checked; "
                    f"fix: add it to guardrails:instanceHourlyUsd"
                ),
            )
            continue
        total += cost
        parts.append(f"{pool.label} {what} = ${cost:,.2f}/h")
    if total > config.gpu_budget_usd_per_hour:
        yield (
            "",
            (
                f"GPU pools at max size cost ${total:,.2f}/h ({'; '.join(parts)}), over the budget of "
                f"${config.gpu_budget_usd_per_hour:,.2f}/h; fix: lower the GPU pools' maxSize or raise "
                f"guardrails:gpuBudgetUsdPerHour"
            ),
        )
