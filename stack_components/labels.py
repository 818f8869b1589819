"""The labels and annotations every object carries (names from `contracts`)."""

from __future__ import annotations

from collections.abc import Mapping

from contracts import (
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MODEL,
    LABEL_NAME,
    LABEL_PART_OF,
    LABEL_ROLE,
    PART_OF,
)
from stack_components.naming import label_value

MANAGED_BY = "app.kubernetes.io/managed-by"


def selector_labels(role: str, instance: str, model: str | None = None) -> dict[str, str]:
    """The stable labels a selector matches on (never change them on a live object)."""
    labels = {LABEL_PART_OF: PART_OF, LABEL_ROLE: role, LABEL_INSTANCE: label_value(instance)}
    if model is not None:
        labels[LABEL_MODEL] = label_value(model)
    return labels


def object_labels(
    role: str, instance: str, model: str | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Selector labels plus the descriptive app.kubernetes.io ones and any extras."""
    labels = dict(extra or {})
    labels |= {LABEL_NAME: role, LABEL_COMPONENT: role, MANAGED_BY: "pulumi"}
    return labels | selector_labels(role, instance, model)


def prometheus_annotations(port: int, path: str) -> dict[str, str]:
    """The conventional scrape annotations for annotation-driven Prometheus discovery."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": path}
