"""Pure renderers: a KEDA ScaledObject (Prometheus triggers) per model, the optional
TriggerAuthentication, and the KEDA Helm release's pinned chart and values.

Field names follow KEDA's CRDs (kedacore/charts `keda/templates/crds/crd-scaledobjects.yaml`
and `crd-triggerauthentications.yaml` at chart 2.20.2); trigger metadata values are strings,
as the CRD requires. The Prometheus scaler's `threshold` is the per-engine target
(`metricType: AverageValue`) or the objective (`Value`); `activationThreshold` is the value
above which a ScaledObject at zero replicas activates. `initialCooldownPeriod` and
`cooldownPeriod` are seconds (KEDA v2.20.2 `pkg/scaling/executor/scale_scaledobjects.go`:
`time.Second * time.Duration(...)`); the initial one counts from the ScaledObject's creation
and applies only until a trigger is first active (`status.lastActiveTime` unset).

Absence is an error, handled by `fallback` (KEDA v2.20.2): every trigger sets
`ignoreNullValues: "false"` (its default is true: an empty result or NaN reads 0,
`pkg/scalers/prometheus_scaler.go`), and the queries answer nothing when Prometheus has lost
their source (see `queries`). After more than `failureThreshold` consecutive failures of a
trigger, `pkg/fallback/fallback.go` hands the HPA that trigger's target times the fallback
replica count; with `behavior: currentReplicas` that count is the current one, so an outage
neither adds nor removes engines (for `Value` triggers KEDA divides by the ready replicas, so
the HPA's arithmetic lands on the current count too). While a trigger fails and before the
threshold, `pkg/scaling/executor/scale_scaledobjects.go` does not scale to zero when
`fallback.replicas` is not 0, hence `replicas` >= 1 although `currentReplicas` ignores it. A
trigger in fallback counts as active (`scale_handler.go`: `isActiveOrFallback`), so a model
at zero engines wakes to one when its triggers fail that long: with Prometheus blind, a
request held for it could not be seen, and serving it wins over sleeping. KEDA 2.20.2's
webhook (`CheckFallbackValid`) refuses a fallback only when every trigger is cpu or memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from policies.autoscaling.errors import require
from policies.autoscaling.policy import EnginePolicy

KEDA_API = "keda.sh/v1alpha1"
KEDA_CHART = "keda"
KEDA_CHART_VERSION = "2.20.2"
"""Pinned chart (= KEDA app) version, kedacore/charts `keda/Chart.yaml`."""
KEDA_REPO = "https://kedacore.github.io/charts"
KEDA_NAMESPACE = "keda"
KEDA_RELEASE = "keda"
"""The Helm release's fixed name (Pulumi would otherwise add a random suffix, and `helm list -n keda`
would show a new name on every replacement)."""
FALLBACK_FAILURES = 3
"""Consecutive failed reads of a trigger before its fallback applies: KEDA reads a trigger on
every polling interval and on every HPA metrics request (15 s), so about 30-45 s; one missed
scrape or a Prometheus restart under that changes nothing."""


@dataclass(frozen=True, kw_only=True)
class PrometheusAuth:
    """Bearer-token access to Prometheus through a TriggerAuthentication (when it needs one)."""

    secret_name: str
    """Secret in the stack's namespace holding the token."""
    secret_key: str = "token"
    """Key of the token inside the Secret."""

    def __post_init__(self) -> None:
        require(bool(self.secret_name), "prometheusAuth.secretName", self.secret_name, "must be non-empty")
        require(bool(self.secret_key), "prometheusAuth.secretKey", self.secret_key, "must be non-empty")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _trigger(name: str, query: str, server: str, threshold: float, activation: float, metric_type: str,
             auth: str | None) -> dict[str, Any]:
    meta = {"serverAddress": server, "query": query, "threshold": _num(threshold),
            "activationThreshold": _num(activation), "ignoreNullValues": "false"}
    trigger: dict[str, Any] = {"type": "prometheus", "name": name, "metricType": metric_type,
                               "metadata": meta}
    if auth is not None:
        meta["authModes"] = "bearer"
        trigger["authenticationRef"] = {"name": auth}
    return trigger


def triggers(policy: EnginePolicy, server: str, auth: str | None = None) -> list[dict[str, Any]]:
    """The model's load trigger, plus, for a model that scales to zero, the triggers that wake
    it: requests held by the routers (any one wakes it) and the router's request rate."""
    kind = "AverageValue" if policy.average else "Value"
    out = [_trigger(policy.metric.lower(), policy.query(), server, policy.target, 0.0, kind, auth)]
    if policy.scales_to_zero:
        # Neither drives the replica count above the load trigger's (a target of 1e6 per
        # engine); only their activation thresholds matter.
        out.append(_trigger("held", policy.held_query(), server, 1e6, 0.0, "AverageValue", auth))
        out.append(_trigger("demand", policy.demand_query(), server, 1e6, policy.activation_rps,
                            "AverageValue", auth))
    return out


def fallback(policy: EnginePolicy) -> dict[str, Any]:
    """What KEDA does with a trigger that keeps failing: keep the current replicas (see the
    module docstring; `replicas` only keeps a failing model from being scaled to zero)."""
    return {"failureThreshold": FALLBACK_FAILURES, "replicas": max(1, policy.min_replicas),
            "behavior": "currentReplicas"}


def scaled_object(name: str, namespace: str, policy: EnginePolicy, *, prometheus_url: str,
                  labels: Mapping[str, str], auth: str | None = None) -> dict[str, Any]:
    """The ScaledObject scaling `policy.deployment` (in `namespace`) between its min and max
    replicas, holding the current count while a trigger's source is lost."""
    policy = replace(policy, namespace=namespace)
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": policy.deployment},
        "pollingInterval": policy.polling_interval_s,
        "cooldownPeriod": policy.down_window_s,
        "initialCooldownPeriod": policy.initial_cooldown_s,
        "minReplicaCount": policy.min_replicas,
        "maxReplicaCount": policy.max_replicas,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": policy.behavior().to_manifest()}},
        "fallback": fallback(policy),
        "triggers": triggers(policy, prometheus_url, auth),
    }
    return {"apiVersion": KEDA_API, "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "spec": spec}


def trigger_authentication(name: str, namespace: str, auth: PrometheusAuth,
                           labels: Mapping[str, str]) -> dict[str, Any]:
    """A TriggerAuthentication handing the Prometheus scaler a bearer token from a Secret."""
    return {"apiVersion": KEDA_API, "kind": "TriggerAuthentication",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"secretTargetRef": [{"parameter": "bearerToken", "name": auth.secret_name,
                                          "key": auth.secret_key}]}}


def keda_values(node_selector: Mapping[str, str]) -> dict[str, Any]:
    """Helm values for the KEDA release: on the system pool, CRDs installed by the chart."""
    return {"crds": {"install": True}, "nodeSelector": dict(node_selector)}
