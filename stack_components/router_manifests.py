"""Pure builders of a `Router`'s Kubernetes manifests."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from contracts import PATH_METRICS, ROLE_ROUTER, ROUTER_PORT
from router.settings import RouterSettings
from stack_components import kube
from stack_components.labels import object_labels, prometheus_annotations, selector_labels

if TYPE_CHECKING:
    from stack_components.router import RouterArgs

CONFIG_DIR = "/etc/llm-stack"
CONFIG_FILE = "router.json"
API_KEYS_DIR = f"{CONFIG_DIR}/secrets"
PORT_NAME = "http"
POD_READS = ("get", "list", "watch")
CLOSE_MARGIN_S = 10
"""After the drain: the router's 1 s close (`router.shell.workers.CLOSE_S`) and process exit."""
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"  # Pulumi's await on the Deployment (default 600 s)


def settings_json(settings: RouterSettings) -> str:
    """The settings file exactly as the router reads it (`RouterSettings.from_dict`)."""
    return json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n"


def build_router_manifests(name: str, args: RouterArgs, settings: RouterSettings) -> dict[str, dict]:
    """Every object of the router, keyed by a stable kind key (the Pulumi name suffix)."""
    labels = object_labels(ROLE_ROUTER, name, None, args.labels)
    text = settings_json(settings)
    out: dict[str, dict] = {}
    if args.api_keys is not None and args.api_keys.value is not None:
        out["api-keys"] = kube.secret_manifest(
            args.api_keys.name, args.namespace, labels, args.api_keys.key, args.api_keys.value
        )
    out |= {
        "config": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": kube.metadata(f"{name}-config", args.namespace, labels),
            "data": {CONFIG_FILE: text},
        },
        "service-account": {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": kube.metadata(name, args.namespace, labels),
            "automountServiceAccountToken": True,
        },
        "role": build_role(name, args.namespace, labels),
        "role-binding": build_role_binding(name, args.namespace, labels),
        "deployment": build_deployment(name, args, text),
        "service": build_service(name, args),
    }
    if args.replicas > 1:
        out["pdb"] = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": kube.metadata(name, args.namespace, labels),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(name)}},
        }
    return out


def _selector(name: str) -> dict[str, str]:
    return selector_labels(ROLE_ROUTER, name)


def build_role(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """Read-only access to pods in one namespace: all engine discovery needs."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": kube.metadata(name, namespace, labels),
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": list(POD_READS)}],
    }


def build_role_binding(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """Binds the router's Role to its ServiceAccount only."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": kube.metadata(name, namespace, labels),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }


def build_service(name: str, args: RouterArgs) -> dict[str, Any]:
    """The router endpoint. Pulumi awaits it until no endpoint is not-ready (and, for a load
    balancer, until it has an address): as long as the router's Deployment, whose readiness
    follows the engines (pulumi-kubernetes provider/pkg/await/service.go; 10 minutes unless
    `pulumi.com/timeoutSeconds`). Not skipped (`pulumi.com/skipAwait`): the await is what
    reports a load balancer that never gets an address."""
    labels = object_labels(ROLE_ROUTER, name, None, args.labels)
    awaited = {TIMEOUT_ANNOTATION: str(args.await_timeout_s)} if args.await_timeout_s else {}
    annotations = dict(args.service_annotations) | awaited
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": kube.metadata(name, args.namespace, labels, annotations or None),
        "spec": {
            "type": args.service_type,
            "selector": _selector(name),
            "ports": [{"name": PORT_NAME, "port": ROUTER_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def build_deployment(name: str, args: RouterArgs, settings_text: str) -> dict[str, Any]:
    """Router pods; a settings checksum annotation rolls them when the settings change."""
    labels = object_labels(ROLE_ROUTER, name, None, args.labels)
    checksum = hashlib.sha256(settings_text.encode()).hexdigest()
    annotations = prometheus_annotations(ROUTER_PORT, PATH_METRICS) | {"llmstack.io/config-sha256": checksum}
    # Readiness follows the engines (/health is 503 until one is healthy), so Pulumi waits for
    # the router as long as it waits for the slowest engine to load, not its 10-minute default.
    awaited = {TIMEOUT_ANNOTATION: str(args.await_timeout_s)} if args.await_timeout_s else None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": kube.metadata(name, args.namespace, labels, awaited),
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": _selector(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": build_pod_spec(name, args),
            },
        },
    }


def build_pod_spec(name: str, args: RouterArgs) -> dict[str, Any]:
    """Non-root, read-only root filesystem, settings and API keys mounted as files."""
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": f"{name}-config"}},
        kube.empty_dir("tmp", 1),
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if args.api_keys is not None:
        volumes.append(
            {
                "name": "api-keys",
                "secret": {
                    "secretName": args.api_keys.name,
                    "items": [{"key": args.api_keys.key, "path": args.api_keys.key}],
                    "defaultMode": 0o440,
                },
            }
        )
        mounts.append({"name": "api-keys", "mountPath": API_KEYS_DIR, "readOnly": True})
    spec: dict[str, Any] = {
        "serviceAccountName": name,
        "securityContext": kube.pod_security_context(args.run_as_user),
        "terminationGracePeriodSeconds": termination_grace_s(args),
        "containers": [build_container(args, mounts)],
        "volumes": volumes,
        "tolerations": [t.to_manifest() for t in args.placement.tolerations],
    }
    if args.placement.node_selector:
        spec["nodeSelector"] = dict(args.placement.node_selector)
    return spec | args.placement.pod_fields(_selector(name))


def termination_grace_s(args: RouterArgs) -> int:
    """The preStop wait, the drain, then the router's close and exit (`CLOSE_MARGIN_S`)."""
    return args.prestop_s + args.drain_s + CLOSE_MARGIN_S


def build_container(args: RouterArgs, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The router container."""
    return {
        "name": "router",
        "image": args.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "router", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        "ports": [{"name": PORT_NAME, "containerPort": ROUTER_PORT, "protocol": "TCP"}],
        "resources": kube.resources(cpu=args.cpu, memory_gib=args.memory_gib),
        "securityContext": kube.container_security_context(read_only_root=True),
        # Ready = an engine is healthy (/health); alive = the process accepts connections, so a
        # router waiting for engines that are still loading is never restarted.
        "readinessProbe": kube.http_probe(PORT_NAME, period_s=5, timeout_s=2, failures=2),
        "livenessProbe": kube.tcp_probe(PORT_NAME, period_s=10, timeout_s=5, failures=3),
        # the kubelet's own sleep (no shell in the image; `sleep` action: Kubernetes >= 1.30)
        "lifecycle": {"preStop": {"sleep": {"seconds": args.prestop_s}}},
        "volumeMounts": mounts,
    }
