"""The one view of a resource every guardrail reads: type, name, URN and properties.

Built from what `pulumi preview` hands a policy pack (`ResourceValidationArgs`, `PolicyResource`)
or from what the recording mock runtime wrote (`llm-stack render`'s `resources.json`), so the
same checks run in CI under the Pulumi CLI and offline in the test suite. Properties stay the
mapping they came as (pulumi-policy's proxies raise on values unknown during preview), so the
helpers below take `Mapping`/`Sequence`, never `dict`/`list`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

K8S = "kubernetes:"
POD_TEMPLATE_TYPES = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:ReplicaSet",
    "kubernetes:batch/v1:Job",
)
CRONJOB = "kubernetes:batch/v1:CronJob"
POD = "kubernetes:core/v1:Pod"


@dataclass(frozen=True)
class Resource:
    """One resource as a guardrail sees it."""

    type: str
    """Pulumi type token, e.g. `kubernetes:apps/v1:Deployment`."""
    name: str
    """Pulumi resource name."""
    urn: str
    """Pulumi URN (what a violation is reported against)."""
    props: Mapping[str, Any]
    """Inputs (resource policies) or outputs (stack policies) as the engine gave them."""

    @property
    def label(self) -> str:
        """How a message names the resource: `Deployment llm-stack/llm-llama8b` for a Kubernetes
        object, `aws:eks/nodeGroup:NodeGroup pools-a100` otherwise."""
        if not self.type.startswith(K8S):
            return f"{self.type} {self.name}"
        meta = mapping(self.props.get("metadata"))
        name = meta.get("name") or self.name
        namespace = meta.get("namespace")
        kind = self.type.rsplit(":", 1)[-1]
        return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def sequence(value: Any) -> Sequence[Any]:
    """`value` if it is a list-like (not a string), else an empty tuple."""
    return value if isinstance(value, Sequence) and not isinstance(value, str | bytes) else ()


def dig(value: Any, *path: str) -> Any:
    """`value[p0][p1]...`, or None where a step is missing or not a mapping."""
    for key in path:
        value = mapping(value).get(key)
    return value


def pod_spec(res: Resource) -> Mapping[str, Any] | None:
    """The pod spec of a workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
    CronJob), or None for any other resource."""
    if res.type in POD_TEMPLATE_TYPES:
        return mapping(dig(res.props, "spec", "template", "spec"))
    if res.type == CRONJOB:
        return mapping(dig(res.props, "spec", "jobTemplate", "spec", "template", "spec"))
    if res.type == POD:
        return mapping(res.props.get("spec"))
    return None


def pod_labels(res: Resource) -> Mapping[str, Any]:
    """The labels a workload's pods carry."""
    if res.type == POD:
        return mapping(dig(res.props, "metadata", "labels"))
    if res.type == CRONJOB:
        return mapping(dig(res.props, "spec", "jobTemplate", "spec", "template", "metadata", "labels"))
    return mapping(dig(res.props, "spec", "template", "metadata", "labels"))


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every container of a pod spec, init containers included."""
    for key in ("initContainers", "containers"):
        for container in sequence(spec.get(key)):
            yield mapping(container)


def from_recorded(record: Mapping[str, Any]) -> Resource:
    """A `resources.json` entry (what `llm-stack render` writes) as a `Resource`."""
    return Resource(
        type=record["type"], name=record["name"], urn=record["urn"], props=mapping(record.get("inputs"))
    )
