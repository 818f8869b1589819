"""*Capacity*: engine replicas per model against the configured min/max, GPUs in use and nodes
per pool against the pools' limits. The limits are the stack's own config, drawn as constant
series beside the live ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import contracts as c
from stack_components.monitoring.dashboards.spec import DashboardSpec, panel
from stack_components.monitoring.rules import NODE_POOL_LABEL_METRIC

UID = "llm-stack-capacity"
POOL = NODE_POOL_LABEL_METRIC


@dataclass(frozen=True, kw_only=True)
class ReplicaBounds:
    """A model's replica bounds."""

    min: int
    """minReplicas."""
    max: int
    """maxReplicas."""


@dataclass(frozen=True, kw_only=True)
class PoolLimit:
    """A node pool's limits."""

    max_nodes: int
    """maxSize."""
    gpus_per_node: int
    """GPUs on one node (0 for a CPU pool)."""


def _const(value: float, label: str, label_value: str) -> str:
    return f'label_replace(vector({value:g}), "{label}", "{label_value}", "", "")'


def _gpus_in_use_per_pool() -> str:
    nodes = f'label_replace(kube_node_labels, "{c.DCGM_NODE_LABEL}", "$1", "node", "(.*)")'
    return (f'count by ({POOL}) ({c.DCGM_GPU_UTIL}{{pod!=""}} * on ({c.DCGM_NODE_LABEL}) '
            f"group_left({POOL}) {nodes})")


def dashboard(models: Mapping[str, ReplicaBounds], pools: Mapping[str, PoolLimit]) -> DashboardSpec:
    """The capacity dashboard for these models (by served name) and node pools."""
    replicas = [(f"count by (model_name) ({c.VLLM_RUNNING})", "{{model_name}} serving")]
    for name, b in sorted(models.items()):
        replicas += [(_const(b.min, "model_name", name), f"{name} min"),
                     (_const(b.max, "model_name", name), f"{name} max")]
    gpu_pools = {k: p for k, p in sorted(pools.items()) if p.gpus_per_node}
    gpus = [(_gpus_in_use_per_pool(), f"{{{{{POOL}}}}} GPUs in use")]
    gpus += [(_const(p.max_nodes * p.gpus_per_node, POOL, k), f"{k} GPU limit") for k, p in gpu_pools.items()]
    nodes = [(f"count by ({POOL}) (kube_node_labels{{{POOL}!=\"\"}})", f"{{{{{POOL}}}}} nodes")]
    nodes += [(_const(p.max_nodes, POOL, k), f"{k} max nodes") for k, p in sorted(pools.items())]
    return DashboardSpec(uid=UID, title="LLM Stack / Capacity", panels=(
        panel("Engine replicas per model against min/max", "short", *replicas),
        panel("GPUs in use against the pools' limits", "short", *gpus),
        panel("Nodes per pool against max size", "short", *nodes),
    ))
