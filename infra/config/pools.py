"""`llm-stack:nodePools`: node pools keyed by name (EKS managed node groups in `eks` mode; a
description of the existing pools, matched by their labels, in `existing` mode).

```yaml
llm-stack:nodePools:
  a100: {instanceType: p4de.24xlarge, minSize: 1, desiredSize: 2, maxSize: 4, diskGiB: 200}
```
GPU pools get the `nvidia.com/gpu=present:NoSchedule` taint and the NVIDIA AMI automatically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from infra.config.catalog import INSTANCES
from infra.errors import require

NODE_POOL_LABEL = "llmstack.io/node-pool"
"""Label carrying the pool's name on every node; engines select their pool with it (in mode
`existing`, label the cluster's nodes with it)."""
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_RESERVATION = re.compile(r"^cr-[0-9a-f]{8,17}$")
_LABEL = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
RESERVED_LABEL_PREFIXES = ("kubernetes.io/", "k8s.io/", "eks.amazonaws.com/", "llmstack.io/")


@dataclass(frozen=True, kw_only=True)
class TaintConfig:
    """A node taint beyond the automatic GPU taint."""

    key: str
    """Taint key."""
    value: str = ""
    """Taint value."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"
    """Taint effect."""

    def __post_init__(self) -> None:
        require(bool(self.key) and len(self.key) <= 253, "key", self.key, "must be a non-empty taint key")
        require(len(self.value) <= 63 and bool(_LABEL.match(self.value)), "value", self.value,
                "must be a valid label value (<= 63 alphanumerics, '-', '_', '.')")


@dataclass(frozen=True, kw_only=True)
class NodePoolConfig:
    """One node pool."""

    instance_type: str
    """EC2 instance type from the catalogue (`infra.config.catalog.INSTANCES`); the engines' memory
    and KV-cache arithmetic, the quota check and the price use its figures."""
    min_size: int
    """Fewest nodes (0 lets an idle GPU pool cost nothing)."""
    desired_size: int
    """Nodes at creation; the node autoscaler owns it afterwards."""
    max_size: int
    """Most nodes; bounds the engines' maximum replicas."""
    alternative_instance_types: tuple[str, ...] = ()
    """More instance types the node group may launch (a spot pool draws on every type's capacity
    pools): each with instanceType's vCPUs, memory, GPU count and GPU memory, since the cluster
    autoscaler sizes a group by one type ("the instance types should have the same amount of RAM
    and number of CPU cores": its AWS README) and the engines are sized by instanceType. Not with a
    capacity reservation or Capacity Block (one type each)."""
    capacity_type: Literal["ON_DEMAND", "SPOT", "CAPACITY_BLOCK"] = "ON_DEMAND"
    """How EC2 capacity is bought: on demand, spot (EKS drains nodes on interruption and rebalance
    notices), or a Capacity Block for ML (needs `capacityReservationId` and one zone)."""
    availability_zones: tuple[str, ...] = ()
    """Zones the pool's nodes run in, a subset of `cluster.eks.availabilityZones`. Empty: a GPU
    pool gets the first cluster zone (scarce p4d/p4de capacity is often in one zone, and LMCache
    traffic across zones is billed); a CPU pool gets every zone."""
    hourly_price_usd: float | None = None
    """On-demand price of one node per hour for the capacity/cost output; None: the dated table in
    `infra/aws/prices.py` (the dearest of the pool's instance types)."""
    capacity_reservation_id: str | None = None
    """An EC2 capacity reservation (`cr-...`) or Capacity Block the nodes launch into; the pool's
    zones must be the reservation's one zone."""
    capacity_block_start: str | None = None
    """UTC start of the Capacity Block (`"2026-12-14T11:30:00Z"`, quoted), with capacityType
    CAPACITY_BLOCK only: a scheduled action sets the node group to `maxSize` nodes then (the block is
    prepaid); EKS itself scales it to 0 forty minutes before the block ends. None: the cluster
    autoscaler adds nodes for pending engines once the block is active."""
    disk_gib: int = 100
    """gp3 root volume size (images and, without NVMe, the model cache)."""
    labels: dict[str, str] = field(default_factory=dict)
    """Extra node labels (the pool name label `llmstack.io/node-pool` is always set)."""
    taints: tuple[TaintConfig, ...] = ()
    """Extra taints (GPU pools always get `nvidia.com/gpu=present:NoSchedule`)."""

    def __post_init__(self) -> None:
        require(self.instance_type in INSTANCES, "instanceType", self.instance_type,
                f"must be one of {', '.join(sorted(INSTANCES))}")
        require(0 <= self.min_size <= self.desired_size <= self.max_size, "desiredSize", self.desired_size,
                f"must satisfy 0 <= minSize ({self.min_size}) <= desiredSize <= maxSize ({self.max_size})")
        require(self.max_size >= 1, "maxSize", self.max_size, "must be >= 1")
        require(20 <= self.disk_gib <= 16384, "diskGiB", self.disk_gib, "must be in 20..16384")
        self._check_capacity()
        self._check_alternatives()
        require(self.hourly_price_usd is None or self.hourly_price_usd > 0, "hourlyPriceUsd",
                self.hourly_price_usd, "must be > 0 (USD per node-hour)")
        for key, value in self.labels.items():
            require(not key.startswith(RESERVED_LABEL_PREFIXES), f"labels.{key}", value,
                    f"must not use a reserved prefix ({', '.join(RESERVED_LABEL_PREFIXES)})")
            require(len(value) <= 63 and bool(_LABEL.match(value)), f"labels.{key}", value,
                    "must be a valid label value (<= 63 alphanumerics, '-', '_', '.')")

    def _check_capacity(self) -> None:
        reservation = self.capacity_reservation_id
        require(reservation is None or bool(_RESERVATION.match(reservation)), "capacityReservationId",
                reservation, "must be a capacity reservation id like cr-0123456789abcdef0")
        require(self.capacity_type != "CAPACITY_BLOCK" or reservation is not None, "capacityReservationId",
                reservation, "is required with capacityType CAPACITY_BLOCK (the block's reservation id)")
        require(reservation is None or len(self.availability_zones) == 1, "availabilityZones",
                list(self.availability_zones), "must name exactly the one zone of the capacity reservation")
        require(len(set(self.availability_zones)) == len(self.availability_zones), "availabilityZones",
                list(self.availability_zones), "must not repeat a zone")
        if self.capacity_type == "CAPACITY_BLOCK":
            self._check_capacity_block()
        else:
            require(self.capacity_block_start is None, "capacityBlockStart", self.capacity_block_start,
                    "is only allowed with capacityType CAPACITY_BLOCK")

    def _check_alternatives(self) -> None:
        main = INSTANCES[self.instance_type]
        same = (main.vcpus, main.memory_gib, main.gpus, main.gpu_memory_gb)
        for i, name in enumerate(self.alternative_instance_types):
            key = f"alternativeInstanceTypes[{i}]"
            require(name in INSTANCES, key, name, f"must be one of {', '.join(sorted(INSTANCES))}")
            unique = name != self.instance_type and self.alternative_instance_types.index(name) == i
            require(unique, key, name, "must differ from instanceType and from the other alternatives")
            alt = INSTANCES[name]
            require((alt.vcpus, alt.memory_gib, alt.gpus, alt.gpu_memory_gb) == same, key, name,
                    f"must match instanceType {self.instance_type} in vCPUs, memory, GPUs and GPU memory "
                    f"({main.vcpus}, {main.memory_gib} GiB, {main.gpus} × {main.gpu_memory_gb} GB; it has "
                    f"{alt.vcpus}, {alt.memory_gib} GiB, {alt.gpus} × {alt.gpu_memory_gb} GB)")
        require(not self.alternative_instance_types or self.capacity_reservation_id is None,
                "alternativeInstanceTypes", list(self.alternative_instance_types),
                "must be empty with a capacityReservationId (a reservation holds one instance type)")

    @property
    def instance_types(self) -> tuple[str, ...]:
        """Every type the node group may launch: instanceType first, then the alternatives."""
        return (self.instance_type, *self.alternative_instance_types)

    def _check_capacity_block(self) -> None:
        """A block's group sits at 0 outside the block's window and during upgrades (EKS user guide,
        "Create a managed node group with Capacity Blocks for ML"): nothing may hold nodes in it."""
        require(self.min_size == 0, "minSize", self.min_size,
                "must be 0 with capacityType CAPACITY_BLOCK (the group must reach 0 when the block ends, "
                "and EKS wants desiredSize 0 for node group upgrades)")
        require(self.desired_size == 0, "desiredSize", self.desired_size,
                "must be 0 with capacityType CAPACITY_BLOCK (nodes come at the block's start: "
                "capacityBlockStart, or the cluster autoscaler for pending engines)")
        if self.capacity_block_start is not None:
            capacity_block_start(self.capacity_block_start)

    @property
    def gpus(self) -> int:
        """GPUs per node."""
        return INSTANCES[self.instance_type].gpus


def capacity_block_start(text: str) -> datetime:
    """A Capacity Block start as an aware UTC datetime; raises `ConfigError` unless `text` is an ISO
    8601 time in UTC (`Z` or `+00:00`)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    require(when is not None and when.utcoffset() is not None and not when.utcoffset(),
            "capacityBlockStart", text, "must be an ISO 8601 time in UTC, like 2026-12-14T11:30:00Z")
    assert when is not None
    return when.astimezone(UTC)


def pool_zones(pool: NodePoolConfig, cluster_zones: tuple[str, ...]) -> tuple[str, ...]:
    """The zones a pool's nodes run in: its own, else one zone for a GPU pool, else every zone."""
    if pool.availability_zones:
        return pool.availability_zones
    return cluster_zones[:1] if pool.gpus else cluster_zones
