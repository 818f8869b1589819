"""Kubernetes label selection, as far as the guardrails need it (matchLabels and the `In`,
`NotIn`, `Exists`, `DoesNotExist` expressions), and the workloads a selector picks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policies.guardrails.objects import Resource, dig, mapping, pod_labels, pod_spec, sequence


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[Any, Any]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), list(sequence(expr.get("values")))
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    return key not in labels  # DoesNotExist


def selects(selector: Any, labels: Mapping[str, Any]) -> bool:
    """Whether a LabelSelector matches `labels` (an empty selector matches everything)."""
    selector = mapping(selector)
    if any(labels.get(k) != v for k, v in mapping(selector.get("matchLabels")).items()):
        return False
    return all(_expression_matches(mapping(e), labels) for e in sequence(selector.get("matchExpressions")))


def namespace(res: Resource) -> str | None:
    """A namespaced object's namespace (None when unset)."""
    return dig(res.props, "metadata", "namespace")


def workloads(resources: Sequence[Resource]) -> Iterator[Resource]:
    """Every resource that runs pods."""
    return (r for r in resources if pod_spec(r) is not None)


def workloads_selected(
    resources: Sequence[Resource], selector: Mapping[str, Any], ns: str | None
) -> list[Resource]:
    """Workloads in namespace `ns` whose pods carry every label of a Service-style selector."""
    return [
        w
        for w in workloads(resources)
        if namespace(w) == ns and selector and all(pod_labels(w).get(k) == v for k, v in selector.items())
    ]
