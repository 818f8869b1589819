"""Small value types shared by several components' Args: secret references, GPU/CPU pod
placement, the model cache volume. Frozen, keyword-only, validated on construction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from stack_components import _validate as v

TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute", "")
MODEL_CACHE_KINDS = ("emptyDir", "hostPath", "pvc")


@dataclass(frozen=True, kw_only=True)
class SecretRef:
    """One key of a Kubernetes Secret in the component's namespace."""

    name: str
    """Name of the Secret (an existing one, or the one the component creates when `value` is set)."""
    key: str
    """Key inside the Secret holding the value."""
    value: pulumi.Input[str] | None = None
    """When set, the component creates the Secret with this value (stored as a Pulumi secret);
    when None, the Secret must already exist."""

    def __post_init__(self) -> None:
        v.dns_label("secret.name", self.name, max_len=253)
        v.require(
            isinstance(self.key, str) and bool(self.key) and "/" not in self.key,
            "secret.key",
            self.key,
            "must be a non-empty Secret key without '/'",
        )


@dataclass(frozen=True, kw_only=True)
class Toleration:
    """A pod toleration (e.g. for the GPU pool's `nvidia.com/gpu` taint)."""

    key: str
    """Taint key tolerated."""
    operator: str = "Exists"
    """`Exists` (any value) or `Equal` (only `value`)."""
    value: str | None = None
    """Taint value, required with `Equal`, forbidden with `Exists`."""
    effect: str = "NoSchedule"
    """Taint effect tolerated; '' tolerates every effect."""

    def __post_init__(self) -> None:
        v.non_empty("toleration.key", self.key)
        v.one_of("toleration.operator", self.operator, TOLERATION_OPERATORS)
        v.one_of("toleration.effect", self.effect, TOLERATION_EFFECTS)
        v.require(
            (self.value is not None) == (self.operator == "Equal"),
            "toleration.value",
            self.value,
            "must be set with operator Equal and unset with Exists",
        )

    def to_manifest(self) -> dict[str, Any]:
        """The Kubernetes `tolerations[]` item."""
        item: dict[str, Any] = {"key": self.key, "operator": self.operator}
        if self.value is not None:
            item["value"] = self.value
        if self.effect:
            item["effect"] = self.effect
        return item


GPU_TOLERATION = Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")


@dataclass(frozen=True, kw_only=True)
class TopologySpread:
    """Spread a component's pods over a topology domain (zones, nodes)."""

    topology_key: str
    """Node label that names the domain: `topology.kubernetes.io/zone`, `kubernetes.io/hostname`."""
    max_skew: int = 1
    """Most pods one domain may hold beyond the emptiest."""
    when_unsatisfiable: str = "ScheduleAnyway"
    """`DoNotSchedule` (a hard rule) or `ScheduleAnyway` (a preference)."""

    def __post_init__(self) -> None:
        v.non_empty("topology_spread.topology_key", self.topology_key)
        v.int_in("topology_spread.max_skew", self.max_skew, 1, 100)
        v.one_of("topology_spread.when_unsatisfiable", self.when_unsatisfiable,
                 ("DoNotSchedule", "ScheduleAnyway"))


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where pods run: a node selector plus tolerations (a node pool, keyed by its labels), how
    they spread, and their priority."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    """Node labels the pod requires, e.g. {"llmstack.io/pool": "a100"}."""
    tolerations: tuple[Toleration, ...] = ()
    """Taints the pod tolerates."""
    topology_spread: tuple[TopologySpread, ...] = ()
    """How the component's pods spread (over zones, nodes)."""
    priority_class_name: str | None = None
    """PriorityClass of the pods (e.g. so batch work never preempts engines); None: the default."""

    def __post_init__(self) -> None:
        v.labels("placement.node_selector", self.node_selector)
        v.require(
            all(isinstance(t, Toleration) for t in self.tolerations),
            "placement.tolerations",
            self.tolerations,
            "must be a tuple of Toleration",
        )
        if self.priority_class_name is not None:
            v.dns_label("placement.priority_class_name", self.priority_class_name)

    def pod_fields(self, selector: Mapping[str, str]) -> dict[str, Any]:
        """Pod-spec fields for the spread (over pods matching `selector`) and the priority."""
        fields: dict[str, Any] = {}
        if self.topology_spread:
            fields["topologySpreadConstraints"] = [
                {"topologyKey": t.topology_key, "maxSkew": t.max_skew,
                 "whenUnsatisfiable": t.when_unsatisfiable, "labelSelector": {"matchLabels": dict(selector)}}
                for t in self.topology_spread]
        if self.priority_class_name:
            fields["priorityClassName"] = self.priority_class_name
        return fields


GPU_PLACEMENT = Placement(tolerations=(GPU_TOLERATION,))


@dataclass(frozen=True, kw_only=True)
class ModelCacheVolume:
    """Where an engine keeps downloaded model weights (the Hugging Face cache)."""

    kind: str = "emptyDir"
    """`emptyDir` (node ephemeral storage: weights downloaded again at every pod start),
    `hostPath` (a node directory, e.g. on the instance NVMe, that survives pod restarts and is
    shared by the node's engines; an init container hands it to the pod's uid) or `pvc` (a
    PersistentVolumeClaim the component creates)."""
    size_gib: int = 200
    """Size limit (emptyDir) or requested size (pvc) in GiB; ignored for hostPath."""
    host_path: str = "/mnt/k8s-disks/0/llm-stack/hf-cache"
    """Node directory for `hostPath`. The default is on the RAID0 array AL2023's nodeadm builds
    from the instance NVMe (`localStorage: RAID0`, mounted under /mnt/k8s-disks/)."""
    storage_class: str | None = None
    """StorageClass for `pvc`; None uses the cluster default."""
    mount_path: str = "/models"
    """Where the volume is mounted in the engine container (HF_HOME points here)."""

    def __post_init__(self) -> None:
        v.one_of("model_cache.kind", self.kind, MODEL_CACHE_KINDS)
        v.int_in("model_cache.size_gib", self.size_gib, 1, 65536)
        v.require(
            self.host_path.startswith("/"),
            "model_cache.host_path",
            self.host_path,
            "must be an absolute path",
        )
        v.require(
            self.mount_path.startswith("/"),
            "model_cache.mount_path",
            self.mount_path,
            "must be an absolute path",
        )
        v.require(
            self.storage_class is None or bool(self.storage_class),
            "model_cache.storage_class",
            self.storage_class,
            "must be a non-empty name or None",
        )
