"""Ingress NetworkPolicies for a stack (pure builders): engines only from the router's pods
(and trusted namespaces such as monitoring; guardrail `engines-isolated` checks it), their KV-event
and replay ports from the router's pods only, the cache
server only from engines, the router from anywhere (it is the entry point; API keys guard it),
the benchmark from nowhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts import (
    ENGINE_PORT,
    LABEL_PART_OF,
    LABEL_ROLE,
    PART_OF,
    ROLE_BENCHMARK,
    ROLE_CACHE_SERVER,
    ROLE_ENGINE,
    ROLE_ROUTER,
    ROUTER_PORT,
)
from contracts.kv_events import KV_EVENTS_PORT, KV_REPLAY_PORT
from stack_components import kube
from stack_components.naming import object_name

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _role(role: str) -> dict[str, Any]:
    return {"matchLabels": {LABEL_PART_OF: PART_OF, LABEL_ROLE: role}}


def _policy(
    name: str, namespace: str, labels: dict[str, str], role: str, ingress: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": kube.metadata(name, namespace, labels),
        "spec": {"podSelector": _role(role), "policyTypes": ["Ingress"], "ingress": ingress},
    }


def _port(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _kv_events_rule(kv_events: bool) -> list[dict[str, Any]]:
    if not kv_events:
        return []
    return [{"from": [{"podSelector": _role(ROLE_ROUTER)}], "ports": _port(KV_EVENTS_PORT, KV_REPLAY_PORT)}]


def build_network_policies(
    stack: str,
    namespace: str,
    labels: dict[str, str],
    *,
    trusted_namespaces: Sequence[str] = (),
    cache_server_port: int | None = None,
    kv_events: bool = False,
) -> dict[str, dict[str, Any]]:
    """The stack's NetworkPolicies keyed by a stable suffix (the Pulumi name suffix); with
    `kv_events`, the router's pods also reach the engines' KV-event and replay sockets."""
    engine_peers: list[dict[str, Any]] = [{"podSelector": _role(ROLE_ROUTER)}]
    if trusted_namespaces:
        engine_peers.append(
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": list(trusted_namespaces)}
                    ]
                }
            }
        )
    out = {
        "netpol-engines": _policy(
            object_name(stack, "engines"),
            namespace,
            labels,
            ROLE_ENGINE,
            [{"from": engine_peers, "ports": _port(ENGINE_PORT)}, *_kv_events_rule(kv_events)],
        ),
        "netpol-router": _policy(
            object_name(stack, "router"), namespace, labels, ROLE_ROUTER, [{"ports": _port(ROUTER_PORT)}]
        ),
        "netpol-benchmark": _policy(object_name(stack, "benchmark"), namespace, labels, ROLE_BENCHMARK, []),
    }
    if cache_server_port is not None:
        out["netpol-cache-server"] = _policy(
            object_name(stack, "cache-server"),
            namespace,
            labels,
            ROLE_CACHE_SERVER,
            [{"from": [{"podSelector": _role(ROLE_ENGINE)}], "ports": _port(cache_server_port)}],
        )
    return out
