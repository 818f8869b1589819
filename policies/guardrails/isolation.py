"""Engines are reachable only from the router and from monitoring: some NetworkPolicy selects
every engine pod for Ingress, and every peer it admits is the router's pods or a monitoring
namespace (no `ipBlock`, no rule without `from`, no broader pod selector)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policies.guardrails.config import GuardrailConfig
from policies.guardrails.label_selectors import namespace, selects, workloads
from policies.guardrails.objects import Resource, dig, mapping, pod_labels, sequence

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label Kubernetes sets on every namespace to its own name."""


def _is_ingress_policy(spec: Mapping[str, Any]) -> bool:
    types = list(sequence(spec.get("policyTypes")))
    return "Ingress" in types or not types  # no policyTypes: Ingress is implied


def _namespaces_selected(selector: Mapping[str, Any]) -> set[str] | None:
    """The namespaces a namespaceSelector names by `kubernetes.io/metadata.name`, or None if it
    selects by anything else (so it cannot be shown to pick only monitoring)."""
    names: set[str] = set()
    exact = mapping(selector.get("matchLabels"))
    if set(exact) - {NAMESPACE_NAME_LABEL}:
        return None
    if NAMESPACE_NAME_LABEL in exact:
        names.add(str(exact[NAMESPACE_NAME_LABEL]))
    for expr in map(mapping, sequence(selector.get("matchExpressions"))):
        if expr.get("key") != NAMESPACE_NAME_LABEL or expr.get("operator") != "In":
            return None
        names.update(map(str, sequence(expr.get("values"))))
    return names or None


def _peer_allowed(peer: Mapping[str, Any], config: GuardrailConfig) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        names = _namespaces_selected(mapping(peer.get("namespaceSelector")))
        return names is not None and names <= set(config.monitoring_namespaces)
    pods = mapping(dig(peer, "podSelector", "matchLabels"))
    return pods.get(config.role_label) == config.router_role


def _rule_issues(policy: Resource, config: GuardrailConfig) -> Iterator[str]:
    for i, rule in enumerate(map(mapping, sequence(dig(policy.props, "spec", "ingress")))):
        peers = list(map(mapping, sequence(rule.get("from"))))
        if not peers:
            yield f"{policy.label} ingress[{i}] has no `from`, so it admits every source"
        for j, peer in enumerate(peers):
            if not _peer_allowed(peer, config):
                yield (
                    f"{policy.label} ingress[{i}].from[{j}] admits {dict(peer)} "
                    f"(neither the router nor monitoring)"
                )


def _fix(config: GuardrailConfig) -> str:
    return (
        f"fix: admit only podSelector {{{config.role_label}: {config.router_role}}} and namespaceSelector "
        f"{NAMESPACE_NAME_LABEL} In {list(config.monitoring_namespaces)}"
    )


def check_engine_isolation(
    resources: Sequence[Resource], config: GuardrailConfig
) -> Iterator[tuple[str, str]]:
    """Every engine workload is covered by an Ingress NetworkPolicy admitting only the router
    and monitoring."""
    policies = [r for r in resources if r.type == NETWORK_POLICY]
    for engine in workloads(resources):
        labels = pod_labels(engine)
        if labels.get(config.role_label) != config.engine_role:
            continue
        covering = [
            p
            for p in policies
            if namespace(p) == namespace(engine)
            and _is_ingress_policy(mapping(p.props.get("spec")))
            and selects(dig(p.props, "spec", "podSelector"), labels)
        ]
        if not covering:
            yield engine.urn, f"{engine.label}: no Ingress NetworkPolicy selects its pods; {_fix(config)}"
        for policy in covering:
            for issue in _rule_issues(policy, config):
                yield policy.urn, f"{issue}, and it selects the engines of {engine.label}; {_fix(config)}"
