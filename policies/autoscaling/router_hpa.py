"""The router's HorizontalPodAutoscaler (autoscaling/v2): CPU utilisation of its pods.

The router is CPU-bound on streaming; pods request what they may use (request = limit), so a
utilisation target is a share of that. Scale-down waits five minutes (the HPA default), one
pod at a time, so a burst does not drop in-flight streams' pods at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.autoscaling.errors import require
from policies.autoscaling.hpa import Behavior, Rules, StepPolicy

ROUTER_BEHAVIOR = Behavior(
    up=Rules(window_s=0, policies=(StepPolicy(type="Percent", value=100, period_s=30),)),
    down=Rules(window_s=300, policies=(StepPolicy(type="Pods", value=1, period_s=60),)),
)


def router_hpa(name: str, namespace: str, deployment: str, *, min_replicas: int, max_replicas: int,
               cpu_utilization: int, labels: Mapping[str, str]) -> dict[str, Any]:
    """An HPA scaling the router Deployment on CPU utilisation."""
    require(1 <= min_replicas <= max_replicas, "router.minReplicas", min_replicas,
            f"must be in 1..maxReplicas ({max_replicas})")
    require(10 <= cpu_utilization <= 100, "router.cpuUtilization", cpu_utilization, "must be in 10..100")
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": min_replicas, "maxReplicas": max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_utilization}}}],
            "behavior": ROUTER_BEHAVIOR.to_manifest(),
        },
    }
