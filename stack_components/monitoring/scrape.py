"""PodMonitors and ServiceMonitors (prometheus-operator CRDs, `monitoring.coreos.com/v1`) for
the engines and the router, as plain manifests. Both relabel `job` to the names in
`contracts`, so every query selects `up{job=...}` the same way on a cluster and in the
local harness, and keep the target's `pod` and `namespace` labels (the operator adds them).

The router's pods are scraped one by one (a PodMonitor, not its Service): with several router
replicas, or `--workers N` in each, every pod's series are seen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import contracts as c
from stack_components.kube import metadata

API_VERSION = "monitoring.coreos.com/v1"
PORT_NAME = "http"  # the engines' and the router's container port name


def _endpoint(interval_s: int, job: str) -> dict[str, Any]:
    return {
        "port": PORT_NAME,
        "path": c.PATH_METRICS,
        "interval": f"{interval_s}s",
        "relabelings": [{"action": "replace", "targetLabel": "job", "replacement": job}],
    }


def pod_monitor(name: str, namespace: str, role: str, job: str, interval_s: int,
                labels: Mapping[str, str]) -> dict[str, Any]:
    """A PodMonitor selecting the stack's pods of one role in `namespace`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "PodMonitor",
        "metadata": metadata(name, namespace, labels),
        "spec": {
            "selector": {"matchLabels": {c.LABEL_PART_OF: c.PART_OF, c.LABEL_ROLE: role}},
            "namespaceSelector": {"matchNames": [namespace]},
            "podMetricsEndpoints": [_endpoint(interval_s, job)],
        },
    }


def stack_monitors(prefix: str, namespace: str, interval_s: int,
                   labels: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Monitors keyed by a stable key: the engines (vLLM and in-process LMCache counters) and
    the router pods."""
    return {
        "engines": pod_monitor(f"{prefix}-engines", namespace, c.ROLE_ENGINE, c.JOB_ENGINES, interval_s,
                               labels),
        "router": pod_monitor(f"{prefix}-router", namespace, c.ROLE_ROUTER, c.JOB_ROUTER, interval_s, labels),
    }
