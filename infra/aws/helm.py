"""Pinned Helm charts and the one way this package installs them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True, kw_only=True)
class HelmChart:
    """A pinned Helm chart."""

    name: str
    """Chart name."""
    version: str
    """Exact chart version (never a range)."""
    repo: str
    """Chart repository URL."""
    namespace: str = "kube-system"
    """Release namespace."""


def release(chart: HelmChart, values: pulumi.Input[dict[str, Any]],
            opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    """An atomic release of `chart` (rolled back if it does not become ready in 10 minutes)."""
    return k8s.helm.v3.Release(
        chart.name, name=chart.name, chart=chart.name, version=chart.version, namespace=chart.namespace,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo), values=values, atomic=True,
        timeout=600, opts=opts)
