"""`Router`: the prefix-aware router in the cluster — Deployment, Service, ServiceAccount,
least-privilege RBAC to watch engine pods, and its settings (`RouterSettings`) as a ConfigMap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from contracts import LABEL_PART_OF, LABEL_ROLE, PART_OF, ROLE_ENGINE, ROUTER_PORT
from contracts.kv_events import KV_SCORING_EVENTS, KV_SCORINGS
from router.settings import (
    DeadlineSettings,
    HealthSettings,
    KubernetesDiscovery,
    KvEventsSettings,
    Limits,
    PolicySettings,
    RouterSettings,
)
from stack_components import _validate as v
from stack_components.common import Placement, SecretRef
from stack_components.engine import EngineCapacity
from stack_components.kube import child_opts, create
from stack_components.naming import object_name, service_host
from stack_components.router_manifests import API_KEYS_DIR, build_router_manifests

LOG_LEVELS = ("debug", "info", "warning", "error")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
DEFAULT_GPU_CACHE_TOKENS = 400_000
DEFAULT_PRESTOP_S = 5
"""A terminating router pod's wait before SIGTERM behind a ClusterIP Service: the endpoint
change reaching every node's kube-proxy (believed)."""


@dataclass(frozen=True, kw_only=True)
class RouterArgs:
    """Everything one `Router` needs; the router image is built elsewhere and passed in."""

    image: pulumi.Input[str]
    """Router image (runs `python -m router --config /etc/llm-stack/router.json`), pinned: a
    reference, or the Output of an image built in the program (infra/aws/images.py)."""
    namespace: str = "default"
    """Namespace of the router and of the engine pods it discovers (`LLMStack` sets it)."""
    replicas: int = 2
    """Router pods."""
    policy: PolicySettings = field(default_factory=PolicySettings)
    """Routing policy kind and parameters."""
    engines: Mapping[str, EngineCapacity] = field(default_factory=dict)
    """Engines keyed by model key; their served names and capacities go into the settings
    (`LLMStack` fills this from its engines)."""
    api_keys: SecretRef | None = None
    """Secret whose key holds the accepted API keys, one per line, mounted as a file; None: open."""
    cpu: float = 1.0
    """CPU cores per router pod (request = limit)."""
    memory_gib: int = 2
    """Memory per router pod in GiB."""
    workers: int = 1
    """Router worker processes per pod."""
    log_level: str = "info"
    """Router log level."""
    limits: Limits = field(default_factory=Limits)
    """Body size, rate limit, upstream timeouts and retries."""
    health: HealthSettings = field(default_factory=HealthSettings)
    """Engine health checking and metrics scraping."""
    kv_events: bool = False
    """Subscribe to the engines' KV-cache events on `contracts.kv_events`' ports (`LLMStack` sets
    it when its engines publish: the stack's `kvEvents.enabled`)."""
    kv_scoring: str = KV_SCORING_EVENTS
    """With `kv_events`, how the router scores engines: `events` (by their KV events) or
    `approximate` (by its own estimate); the router's `kv_events.scoring`, the stack's
    `kvEvents.scoring`."""
    placement: Placement = field(default_factory=Placement)
    """Node selector and tolerations (a CPU pool)."""
    service_type: str = "ClusterIP"
    """Service type of the router endpoint."""
    service_annotations: Mapping[str, str] = field(default_factory=dict)
    """Annotations on the Service (e.g. load balancer settings)."""
    run_as_user: int = 10001
    """Non-root uid of the router pods."""
    drain_s: int = 30
    """Seconds a router pod keeps serving its open requests after SIGTERM (`RouterSettings.drain_s`);
    `LLMStack` raises it to its engines' longest drain, so the longest request gets through."""
    prestop_s: int = DEFAULT_PRESTOP_S
    """Seconds a terminating router pod waits before SIGTERM (a preStop sleep), while the Service's
    endpoints (and a load balancer's targets) stop sending it new connections."""
    await_timeout_s: int | None = None
    """How long `pulumi up` waits for the router Deployment to become ready (its readiness
    follows the engines'); None keeps Pulumi's default (10 minutes). `LLMStack` sets it to the
    longest engine await."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on every object."""

    def __post_init__(self) -> None:
        v.image("image", self.image)
        v.dns_label("namespace", self.namespace)
        v.int_in("replicas", self.replicas, 0, 100)
        v.require(isinstance(self.policy, PolicySettings), "policy", self.policy, "must be a PolicySettings")
        v.require(
            isinstance(self.engines, Mapping)
            and all(isinstance(e, EngineCapacity) for e in self.engines.values()),
            "engines",
            self.engines,
            "must map model keys to EngineCapacity",
        )
        for key in self.engines:
            v.dns_label(f"engines[{key!r}]", key)
        v.positive("cpu", self.cpu)
        v.int_in("memory_gib", self.memory_gib, 1, 1024)
        v.require(isinstance(self.kv_events, bool), "kv_events", self.kv_events, "must be a bool")
        v.one_of("kv_scoring", self.kv_scoring, KV_SCORINGS)
        v.int_in("workers", self.workers, 1, 64)
        if self.policy.sole_router:  # router/routing/policies/prefix.py, step 4
            v.require(self.replicas <= 1, "policy.params.sole_router", True,
                      f"needs replicas <= 1 (got {self.replicas}): each replica would place new "
                      "conversations by its own load and split their caches")
        v.one_of("log_level", self.log_level, LOG_LEVELS)
        v.one_of("service_type", self.service_type, SERVICE_TYPES)
        v.int_in("run_as_user", self.run_as_user, 1, 2**31 - 1)
        v.int_in("drain_s", self.drain_s, 1, 24 * 3600)
        v.int_in("prestop_s", self.prestop_s, 0, 3600)
        if self.await_timeout_s is not None:
            v.int_in("await_timeout_s", self.await_timeout_s, 60, 24 * 3600)
        v.labels("labels", self.labels)


def router_settings(args: RouterArgs) -> RouterSettings:
    """The router's settings: Kubernetes discovery of this stack's engine pods, the served
    models, the LoRA adapters on them (each with its base model) and their weighted rollouts,
    and default capacities no larger than the smallest engine's (so the router never believes
    in more cache than an engine has)."""
    caps = list(args.engines.values())
    models = tuple(dict.fromkeys(c.served_model_name for c in caps))
    return RouterSettings(
        discovery=KubernetesDiscovery(
            namespace=args.namespace, label_selector=f"{LABEL_PART_OF}={PART_OF},{LABEL_ROLE}={ROLE_ENGINE}"
        ),
        models=models,
        adapters={adapter: c.served_model_name for c in caps for adapter in c.adapters},
        rollouts={name: dict(weights) for c in caps for name, weights in c.rollouts.items()},
        policy=args.policy,
        default_gpu_cache_tokens=min((c.gpu_cache_tokens for c in caps), default=DEFAULT_GPU_CACHE_TOKENS),
        default_cpu_cache_tokens=min((c.cpu_cache_tokens for c in caps), default=0),
        api_keys_file=f"{API_KEYS_DIR}/{args.api_keys.key}" if args.api_keys else None,
        limits=args.limits,
        health=args.health,
        kv_events=KvEventsSettings(enabled=args.kv_events, scoring=args.kv_scoring),
        # an adapter runs on its base model's engines: their deadlines
        deadlines=DeadlineSettings(models={name: c.deadlines for c in caps
                                           for name in (c.served_model_name, *c.adapters)}),
        port=ROUTER_PORT,
        workers=args.workers,
        log_level=args.log_level,
        drain_s=float(args.drain_s),
    )


class Router(pulumi.ComponentResource):
    """The router Deployment, its Service, ServiceAccount, Role/RoleBinding and settings."""

    endpoint: pulumi.Output[str]
    """In-cluster base URL, e.g. http://llm-router.llm.svc.cluster.local:8080."""
    load_balancer_host: pulumi.Output[str | None] | None
    """With `service_type` LoadBalancer: the address the load balancer controller wrote into
    the Service's `status.loadBalancer.ingress` (a hostname on AWS); None otherwise."""
    service_name: pulumi.Output[str]
    """Name of the router Service."""
    deployment_name: pulumi.Output[str]
    """Name of the router Deployment."""
    settings: RouterSettings
    """The rendered settings, as plain values."""
    object_name: str
    """Name shared by the router's Deployment, Service and ServiceAccount (known before deploy)."""

    def __init__(self, name: str, args: RouterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmstack:components:Router", name, None, opts)
        self.settings = router_settings(args)
        object_base = self.object_name = object_name(name)
        child = child_opts(self, opts)
        manifests = build_router_manifests(object_base, args, self.settings)
        created = {kind: create(f"{name}-{kind}", m, child) for kind, m in manifests.items()}
        host = service_host(object_base, args.namespace)
        self.service_name = created["service"].metadata.apply(lambda _: object_base)
        self.deployment_name = created["deployment"].metadata.apply(lambda _: object_base)
        self.endpoint = self.service_name.apply(lambda _: f"http://{host}:{ROUTER_PORT}")
        self.load_balancer_host = (created["service"].status.apply(ingress_host)
                                   if args.service_type == "LoadBalancer" else None)
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "load_balancer_host": self.load_balancer_host,
                "service_name": self.service_name,
                "deployment_name": self.deployment_name,
            }
        )


def ingress_host(status: Any) -> str | None:
    """The first `status.loadBalancer.ingress` entry's hostname (or IP) of a Service, as the
    provider returns it (typed outputs or plain dicts); None before it has one."""
    def get(obj: Any, attr: str, key: str) -> Any:
        if obj is None:
            return None
        if hasattr(obj, attr):  # pulumi-kubernetes' output types (dicts with property getters)
            return getattr(obj, attr)
        return obj.get(key) if isinstance(obj, dict) else None

    ingress = get(get(status, "load_balancer", "loadBalancer"), "ingress", "ingress") or []
    first = ingress[0] if ingress else None
    return get(first, "hostname", "hostname") or get(first, "ip", "ip")
