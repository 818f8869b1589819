"""`Autoscaling`: the KEDA release (pinned chart), one ScaledObject per model with Prometheus
triggers, the optional TriggerAuthentication, and the router's CPU HPA — all rendered by the
pure functions of `policies.autoscaling`. Plugs into `LLMStack` through its `autoscaling`
seam (`AutoscalingExtension`), or runs on its own with the Deployment names given."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from policies.autoscaling import keda
from policies.autoscaling.keda import PrometheusAuth
from policies.autoscaling.policy import EnginePolicy
from policies.autoscaling.router_hpa import router_hpa
from stack_components import _validate as v
from stack_components.kube import child_opts
from stack_components.labels import object_labels
from stack_components.stack import StackContext

ROLE = "autoscaling"


@dataclass(frozen=True, kw_only=True)
class RouterScaling:
    """The router Deployment's CPU HPA."""

    deployment: str = ""
    """Router Deployment name (`AutoscalingExtension` fills it)."""
    min_replicas: int = 2
    """Fewest router pods."""
    max_replicas: int = 6
    """Most router pods."""
    cpu_utilization: int = 70
    """Target average CPU utilisation, percent of the pods' request."""


@dataclass(frozen=True, kw_only=True)
class AutoscalingArgs:
    """Engine policies keyed by model key, where Prometheus is, and the router's HPA."""

    policies: Mapping[str, EnginePolicy]
    """One policy per model key (its `deployment`/`served_name` are filled from the stack)."""
    prometheus_url: str
    """Prometheus the triggers query (e.g. kube-prometheus-stack's in-cluster Service)."""
    namespace: str = "default"
    """Namespace of the scaled Deployments (`AutoscalingExtension` sets the stack's)."""
    prometheus_auth: PrometheusAuth | None = None
    """Bearer token for Prometheus via a TriggerAuthentication; None: Prometheus needs none."""
    install_keda: bool = True
    """Install KEDA (pinned Helm chart) in namespace `keda`; False: the cluster has it."""
    keda_node_selector: Mapping[str, str] = field(default_factory=dict)
    """Where KEDA's pods run (the system pool)."""
    router: RouterScaling | None = None
    """The router HPA; None: the router keeps its fixed replica count."""

    def __post_init__(self) -> None:
        v.require(isinstance(self.policies, Mapping) and bool(self.policies), "policies", self.policies,
                  "must map at least one model key to an EnginePolicy")
        for key, policy in self.policies.items():
            v.dns_label(f"policies[{key!r}]", key, max_len=40)
            v.require(isinstance(policy, EnginePolicy), f"policies[{key!r}]", policy,
                      "must be an EnginePolicy")
        v.require(self.prometheus_url.startswith(("http://", "https://")), "prometheus_url",
                  self.prometheus_url, "must be an http(s):// URL")
        v.dns_label("namespace", self.namespace)


class Autoscaling(pulumi.ComponentResource):
    """KEDA, the engines' ScaledObjects and the router HPA."""

    scaled_objects: dict[str, pulumi.CustomResource]
    """ScaledObjects by model key."""

    def __init__(self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmstack:components:Autoscaling", name, None, opts)
        for key, policy in args.policies.items():
            v.dns_label(f"policies[{key!r}].deployment", policy.deployment)
            v.non_empty(f"policies[{key!r}].served_name", policy.served_name)
        child = child_opts(self, opts)
        after = child
        if args.install_keda:
            release = k8s.helm.v3.Release(
                f"{name}-keda", name=keda.KEDA_RELEASE, chart=keda.KEDA_CHART,
                version=keda.KEDA_CHART_VERSION,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=keda.KEDA_REPO),
                namespace=keda.KEDA_NAMESPACE, create_namespace=True,
                values=keda.keda_values(args.keda_node_selector), opts=child)
            after = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[release]))
        auth = self._auth(name, args, after)
        self.scaled_objects = {key: self._scaled_object(name, key, policy, args, auth, after)
                               for key, policy in args.policies.items()}
        if args.router is not None:
            self._router_hpa(name, args, child)
        self.register_outputs({})

    @staticmethod
    def _auth(name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions) -> str | None:
        if args.prometheus_auth is None:
            return None
        auth_name = f"{name}-prometheus"
        doc = keda.trigger_authentication(auth_name, args.namespace, args.prometheus_auth,
                                          object_labels(ROLE, name))
        _custom(auth_name, doc, opts)
        return auth_name

    @staticmethod
    def _scaled_object(name: str, key: str, policy: EnginePolicy, args: AutoscalingArgs, auth: str | None,
                       opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        doc = keda.scaled_object(policy.deployment, args.namespace, policy,
                                 prometheus_url=args.prometheus_url,
                                 labels=object_labels(ROLE, name, policy.served_name), auth=auth)
        return _custom(f"{name}-{key}", doc, opts)

    @staticmethod
    def _router_hpa(name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions) -> None:
        r = args.router
        assert r is not None
        doc = router_hpa(r.deployment, args.namespace, r.deployment, min_replicas=r.min_replicas,
                         max_replicas=r.max_replicas, cpu_utilization=r.cpu_utilization,
                         labels=object_labels(ROLE, name))
        k8s.autoscaling.v2.HorizontalPodAutoscaler(f"{name}-router", metadata=doc["metadata"],
                                                   spec=doc["spec"], opts=opts)


def _custom(resource_name: str, doc: dict, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    return k8s.apiextensions.CustomResource(resource_name, api_version=doc["apiVersion"], kind=doc["kind"],
                                            metadata=doc["metadata"], spec=doc["spec"], opts=opts)


@dataclass(frozen=True, kw_only=True)
class AutoscalingExtension:
    """The `LLMStack` seam: fills each policy's Deployment and served name, the namespace and
    the router Deployment from the stack, then builds `Autoscaling`."""

    args: AutoscalingArgs
    """Policies keyed by the stack's model keys."""
    name: str = "autoscaling"
    """Resource name prefix."""

    def build(self, ctx: StackContext) -> None:
        unknown = sorted(set(self.args.policies) - set(ctx.engines))
        v.require(not unknown, "policies", unknown,
                  f"must name the stack's models ({', '.join(ctx.engines)})")
        policies = {key: dataclasses.replace(p, deployment=ctx.engines[key].object_name,
                                             served_name=ctx.engine_args[key].served_name)
                    for key, p in self.args.policies.items()}
        router = self.args.router
        if router is not None:
            router = dataclasses.replace(router, deployment=ctx.router.object_name)
        engines = [*ctx.engines.values(), ctx.router]
        opts = pulumi.ResourceOptions.merge(ctx.opts, pulumi.ResourceOptions(depends_on=engines))
        args = dataclasses.replace(self.args, policies=policies, router=router, namespace=ctx.namespace)
        Autoscaling(self.name, args, opts)
