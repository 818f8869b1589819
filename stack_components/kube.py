"""Pure helpers that build pieces of Kubernetes manifests, and the one shell function that
turns a finished manifest into a pulumi-kubernetes resource."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from contracts import PATH_HEALTH

_KINDS: dict[tuple[str, str], type[pulumi.CustomResource]] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "PersistentVolumeClaim"): k8s.core.v1.PersistentVolumeClaim,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("batch/v1", "Job"): k8s.batch.v1.Job,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def create(
    resource_name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
) -> Any:
    """Register one finished manifest as its typed pulumi-kubernetes resource (a CustomResource
    of the manifest's kind, known only at run time: typed Any so callers may read `metadata`)."""
    cls = _KINDS[(manifest["apiVersion"], manifest["kind"])]
    fields = {_snake(k): v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    return cls(resource_name, **fields, opts=opts)


def metadata(
    name: str, namespace: str | None, labels: Mapping[str, str],
    annotations: Mapping[str, pulumi.Input[str]] | None = None,
) -> dict[str, Any]:
    """An ObjectMeta with an explicit name (object names derive from keys, never random)."""
    meta: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def container_security_context(*, read_only_root: bool = True) -> dict[str, Any]:
    """No privilege escalation, every capability dropped, the runtime's default seccomp profile."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(run_as_user: int | None) -> dict[str, Any]:
    """Non-root (when a uid is given) with a matching fsGroup so volumes are writable."""
    ctx: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if run_as_user is not None:
        ctx |= {
            "runAsNonRoot": True,
            "runAsUser": run_as_user,
            "runAsGroup": run_as_user,
            "fsGroup": run_as_user,
        }
    return ctx


def cpu_quantity(cores: float) -> str:
    """Kubernetes CPU quantity: whole cores as "8", fractions as millicores "500m"."""
    millis = round(cores * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def gib(value: float) -> str:
    """A memory/storage quantity in whole GiB (rounded up)."""
    return f"{math.ceil(value)}Gi"


def resources(*, cpu: float, memory_gib: float, gpus: int = 0) -> dict[str, Any]:
    """Requests equal limits (Guaranteed QoS), plus `nvidia.com/gpu` when GPUs are asked for."""
    amounts: dict[str, Any] = {"cpu": cpu_quantity(cpu), "memory": gib(memory_gib)}
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def http_probe(
    port: str, *, period_s: int, timeout_s: int, failures: int, path: str = PATH_HEALTH
) -> dict[str, Any]:
    """An HTTP GET probe on a named port."""
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period_s,
        "timeoutSeconds": timeout_s,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def tcp_probe(port: str, *, period_s: int, timeout_s: int, failures: int) -> dict[str, Any]:
    """A TCP connect probe on a named port (the process listens; nothing about its peers)."""
    return {
        "tcpSocket": {"port": port},
        "periodSeconds": period_s,
        "timeoutSeconds": timeout_s,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def secret_env(env_name: str, secret: str, key: str) -> dict[str, Any]:
    """An env var read from a Secret key (never inlined)."""
    return {"name": env_name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def field_env(env_name: str, field_path: str) -> dict[str, Any]:
    """An env var from the pod's own fields (the Downward API), e.g. `status.podIP`."""
    return {"name": env_name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}}


def plain_env(values: Mapping[str, str]) -> list[dict[str, str]]:
    """Env vars from a mapping, in its order."""
    return [{"name": k, "value": str(val)} for k, val in values.items()]


def empty_dir(name: str, size_gib: float | None = None, *, memory: bool = False) -> dict[str, Any]:
    """An emptyDir volume, optionally RAM-backed, with a size limit."""
    spec: dict[str, Any] = {}
    if memory:
        spec["medium"] = "Memory"
    if size_gib is not None:
        spec["sizeLimit"] = gib(size_gib)
    return {"name": name, "emptyDir": spec}


def secret_manifest(
    name: str, namespace: str, labels: Mapping[str, str], key: str, value: pulumi.Input[str]
) -> dict[str, Any]:
    """An Opaque Secret holding one key; the value is wrapped as a Pulumi secret."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, namespace, labels),
        "type": "Opaque",
        "stringData": {key: pulumi.Output.secret(value)},
    }


def child_opts(
    parent: pulumi.Resource, opts: pulumi.ResourceOptions | None, **extra: Any
) -> pulumi.ResourceOptions:
    """Options for a component's children: parented to it (so they inherit its provider) and
    waiting on whatever the component itself was told to wait on."""
    depends_on = opts.depends_on if opts is not None else None
    return pulumi.ResourceOptions(parent=parent, depends_on=depends_on, **extra)
