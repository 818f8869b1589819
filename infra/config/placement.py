"""Whether a GPU pool's engines can all be placed at their `maxReplicas`, and the PriorityClass
each engine size runs at so that they can.

The scheduler does not pack GPUs: it spreads pods (LeastAllocated scoring), so eight TP-1
engines on two 8-GPU nodes may split 5/3, and a TP-4 engine then fits on neither although the
pool has 8 GPUs free. The stack therefore runs larger engines at a higher PriorityClass:

- the scheduler orders pending pods by priority, higher first, and a pod that fits on no node
  preempts lower-priority pods on one node (Kubernetes docs, "Pod Priority and Preemption",
  kubernetes.io/docs/concepts/configuration/pod-priority-preemption/: "the scheduler orders
  pending Pods by their priority"; preemption is per node, never across nodes; PodDisruptionBudgets
  are honoured only on a best-effort basis; victims get their graceful termination period);
- every tensor-parallel size divides the node's GPUs (a rule), and the catalogue's GPU counts are
  powers of two, so the sizes on a pool form a chain (1 | 2 | 4 | 8). A pending engine of size t
  then finds a node where pods of size >= t hold fewer than all GPUs whenever those pods' GPUs fit
  the pool (pigeonhole); they hold a multiple of t there, so at least t GPUs are free or held by
  smaller, preemptible engines. Every engine is placed as soon as the GPUs at `maxReplicas` fit
  the pool: nodes needed = ceil(GPUs / GPUs per node).
- In any order (no PriorityClasses: mode `existing`), a size-t engine can be left out only when
  every node has fewer than t GPUs free, i.e. at least G - t + 1 used on each of N nodes; that is
  impossible once N (G - t + 1) > total - t. So N = floor((total - t) / (G - t + 1)) + 1 nodes,
  for the largest t, guarantee placement (prod at maxReplicas: 9 p4de nodes, not 6).

The cluster autoscaler adds nodes for pending pods whose priority is at least its
`--expendable-pods-priority-cutoff` (default -10); every class here is far above it.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config.stack import StackConfig
from infra.errors import NAMESPACE

SERVING_PRIORITY_CLASS = "llm-serving"
"""PriorityClass of the router and of one-GPU engines: above default (0) and batch work, below system-*."""
SERVING_PRIORITY_VALUE = 100000
PRIORITY_STEP = 100
"""Each extra GPU of an engine raises its priority by this much (TP-4: 100300)."""


def engine_priority_class(tensor_parallel_size: int) -> str:
    """The PriorityClass an engine of this tensor-parallel size runs at (`llm-serving-tp4`)."""
    tp = tensor_parallel_size
    return SERVING_PRIORITY_CLASS if tp == 1 else f"{SERVING_PRIORITY_CLASS}-tp{tp}"


def priority_value(tensor_parallel_size: int) -> int:
    """Strictly increasing in the engine's GPUs, so larger engines are placed (and preempt) first."""
    return SERVING_PRIORITY_VALUE + PRIORITY_STEP * (tensor_parallel_size - 1)


def tensor_parallel_sizes(config: StackConfig) -> tuple[int, ...]:
    """The engine sizes of the stack, with 1 always (the router's class), ascending."""
    return tuple(sorted({1, *(m.tensor_parallel_size for m in config.models.values())}))


@dataclass(frozen=True, kw_only=True)
class PoolPlacement:
    """A GPU pool's engines at their `maxReplicas` against the pool's `maxSize`."""

    pool: str
    """Pool name."""
    gpus_per_node: int
    """GPUs of one node."""
    max_size: int
    """The pool's `maxSize`."""
    engines: tuple[tuple[str, int, int], ...]
    """(model, maxReplicas, tensorParallelSize) of each model on the pool, by name."""
    ordered: bool
    """Whether engines run at PriorityClasses by size (mode `eks`), so larger ones are placed first."""

    @property
    def gpus(self) -> int:
        """GPUs the pool's models need with every model at its maxReplicas."""
        return sum(replicas * tp for _, replicas, tp in self.engines)

    @property
    def nodes_ordered(self) -> int:
        """Nodes that guarantee every engine a place, larger engines first (perfect packing)."""
        return -(-self.gpus // self.gpus_per_node)

    @property
    def nodes_any_order(self) -> int:
        """Nodes that guarantee every engine a place in whatever order the scheduler meets them."""
        total, g = self.gpus, self.gpus_per_node
        return max([self.nodes_ordered, *((total - tp) // (g - tp + 1) + 1 for _, _, tp in self.engines)])

    @property
    def chained(self) -> bool:
        """Whether each engine size divides every larger one (what ordering needs to pack perfectly)."""
        sizes = sorted({tp for _, _, tp in self.engines})
        return all(b % a == 0 for a, b in zip(sizes, sizes[1:], strict=False))

    @property
    def nodes_needed(self) -> int:
        """Nodes that guarantee placement with this stack's scheduling (ordered or not)."""
        return self.nodes_ordered if self.ordered and self.chained else self.nodes_any_order

    @property
    def guaranteed(self) -> bool:
        """Whether `maxSize` nodes place every engine at its maxReplicas."""
        return self.max_size >= self.nodes_needed


def pool_placements(config: StackConfig) -> dict[str, PoolPlacement]:
    """The placement arithmetic of every pool that runs engines."""
    out: dict[str, PoolPlacement] = {}
    for name, pool in config.node_pools.items():
        engines = tuple((m, model.max_replicas, model.tensor_parallel_size)
                        for m, model in sorted(config.models.items()) if model.node_pool == name)
        if engines and pool.gpus:
            out[name] = PoolPlacement(pool=name, gpus_per_node=pool.gpus, max_size=pool.max_size,
                                      engines=engines, ordered=config.cluster.mode == "eks")
    return out


def placement_line(p: PoolPlacement) -> str:
    """One line of arithmetic: GPUs at maxReplicas, nodes they need, whether maxSize guarantees it."""
    parts = " + ".join(f"{m} {r}×TP-{tp}" for m, r, tp in p.engines)
    how = ("larger engines first (each size at its own PriorityClass, preempting smaller ones)"
           if p.ordered and p.chained else "in any order (no PriorityClass per engine size)")
    verdict = "guaranteed" if p.guaranteed else "NOT guaranteed"
    return (f"{p.pool}: at maxReplicas {parts} = {p.gpus} GPUs = {p.nodes_ordered} × "
            f"{p.gpus_per_node}-GPU nodes packed; {p.nodes_needed} nodes guarantee placement {how}, "
            f"{p.nodes_any_order} in any order; maxSize {p.max_size}: {verdict}")


def placement_warnings(config: StackConfig) -> list[str]:
    """A warning per pool whose maxSize does not guarantee every engine a place at maxReplicas
    (where the GPUs fit at all; a shortfall there is the `maxSize` rule's error)."""
    out = []
    for p in pool_placements(config).values():
        if not p.guaranteed and p.gpus <= p.max_size * p.gpus_per_node:
            out.append(f"{NAMESPACE}:nodePools.{p.pool}.maxSize = {p.max_size} does not guarantee every "
                       f"engine a node at maxReplicas: {p.nodes_needed} nodes needed ({placement_line(p)}); "
                       f"raise it, or lower the models' maxReplicas")
    return out
