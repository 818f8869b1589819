"""`LLMStack`: every model's engine, the optional shared LMCache server, the router wired with
each engine's capacity, and the optional post-deploy benchmark — in one namespace, on any
Kubernetes provider. Monitoring and autoscaling plug in through `StackExtension` seams."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pulumi

from contracts import ROUTER_PORT
from stack_components import _validate as v
from stack_components import kube
from stack_components.benchmark_job import BenchmarkJob, BenchmarkJobArgs
from stack_components.common import SecretRef
from stack_components.engine import EngineCapacity, VllmEngine, VllmEngineArgs
from stack_components.engine_manifests import build_container
from stack_components.labels import object_labels
from stack_components.lmcache_server import LMCacheServer, LMCacheServerArgs, lmcache_server_url
from stack_components.naming import object_name, service_host
from stack_components.network_policy import build_network_policies
from stack_components.router import Router, RouterArgs
from stack_components.router_manifests import settings_json


@dataclass(frozen=True, kw_only=True)
class StackContext:
    """What an extension sees once the engines and router exist."""

    namespace: str
    """The stack's namespace."""
    engines: Mapping[str, VllmEngine]
    """Engine components keyed by model key."""
    engine_args: Mapping[str, VllmEngineArgs]
    """Each engine's resolved args (namespace, secrets and LMCache remote filled in)."""
    router: Router
    """The router component."""
    opts: pulumi.ResourceOptions
    """Options for the extension's resources (parented to the stack: same provider)."""


@runtime_checkable
class StackExtension(Protocol):
    """A seam later parts fill (monitoring, autoscaling): builds its resources from the context."""

    def build(self, ctx: StackContext) -> None:
        """Create the extension's resources with `ctx.opts`."""


@dataclass(frozen=True, kw_only=True)
class LLMStackArgs:
    """The whole serving stack. The component sets `namespace` on every part's args (and the
    shared HF token, the LMCache remote URL, the router's engines and the benchmark's target)."""

    models: Mapping[str, VllmEngineArgs]
    """Engines keyed by a stable model key (a DNS label); object names derive from the key."""
    router: RouterArgs
    """The router; its `engines` are filled from the models."""
    namespace: str = "llm-stack"
    """Namespace of every object."""
    create_namespace: bool = True
    """Create the namespace (False: it already exists)."""
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on the created namespace (e.g. the AWS Load Balancer Controller's
    `elbv2.k8s.aws/pod-readiness-gate-inject: enabled`)."""
    hf_token: SecretRef | None = None
    """Hugging Face token for engines that set none; with a value, one Secret is created."""
    lmcache_server: LMCacheServerArgs | None = None
    """Shared LMCache server; engines with LMCache and no remote URL use it."""
    benchmark: BenchmarkJobArgs | None = None
    """Post-deploy benchmark against the router; None skips it."""
    monitoring: StackExtension | None = None
    """Seam for monitoring (dashboards, rules, scrape config)."""
    autoscaling: StackExtension | None = None
    """Seam for autoscaling (KEDA/HPA/Karpenter from `policies`)."""
    network_policies: bool = True
    """Create ingress NetworkPolicies (engines reachable only from the stack and trusted namespaces)."""
    trusted_namespaces: tuple[str, ...] = ()
    """Namespaces (e.g. monitoring) whose pods may reach the engine pods (metrics scraping)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on the namespace and the stack-level objects."""

    def __post_init__(self) -> None:
        v.dns_label("namespace", self.namespace)
        v.require(
            isinstance(self.models, Mapping) and bool(self.models),
            "models",
            self.models,
            "must map at least one model key to VllmEngineArgs",
        )
        for key, item in self.models.items():
            v.dns_label(f"models[{key!r}]", key, max_len=40)
            v.require(isinstance(item, VllmEngineArgs), f"models[{key!r}]", item, "must be a VllmEngineArgs")
        v.require(isinstance(self.router, RouterArgs), "router", self.router, "must be a RouterArgs")
        for seam in ("monitoring", "autoscaling"):
            value = getattr(self, seam)
            v.require(
                value is None or isinstance(value, StackExtension),
                seam,
                value,
                "must have a build(ctx) method or be None",
            )
        served = {m.served_name for m in self.models.values()}
        if self.benchmark is not None and self.benchmark.model is not None:
            v.one_of("benchmark.model", self.benchmark.model, sorted(served))
        for ns in self.trusted_namespaces:
            v.dns_label("trusted_namespaces", ns)
        v.labels("labels", self.labels)
        v.labels("namespace_labels", self.namespace_labels)


def router_endpoint(stack_name: str, namespace: str) -> str:
    """The router's in-cluster URL for a stack named `stack_name` (known before deploy)."""
    return f"http://{service_host(object_name(f'{stack_name}-router'), namespace)}:{ROUTER_PORT}"


def resolve_engine_args(args: LLMStackArgs, key: str, stack_name: str) -> VllmEngineArgs:
    """One engine's args with the stack's namespace, HF token and LMCache remote filled in."""
    engine = args.models[key]
    token = engine.hf_token or (dataclasses.replace(args.hf_token, value=None) if args.hf_token else None)
    lmcache = engine.lmcache
    if lmcache is not None and lmcache.remote_url is None and args.lmcache_server is not None:
        url = lmcache_server_url(f"{stack_name}-lmcache", args.namespace, args.lmcache_server.port)
        lmcache = dataclasses.replace(lmcache, remote_url=url)
    return dataclasses.replace(engine, namespace=args.namespace, hf_token=token, lmcache=lmcache)


def serving_digest(
    engines: Mapping[str, VllmEngineArgs], router: RouterArgs, settings_text: str
) -> pulumi.Output[str]:
    """A digest of what the benchmark measures: every engine container (image, command, env,
    resources), the router's image (by digest when built) and settings. Any change to it
    re-runs the benchmark."""

    def digest(router_image: str) -> str:
        doc = {
            "engines": {key: build_container(a) for key, a in sorted(engines.items())},
            "router": {"image": router_image, "replicas": router.replicas, "settings": settings_text},
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    return pulumi.Output.from_input(router.image).apply(digest)


def resolve_benchmark_args(args: LLMStackArgs, stack_name: str, rerun_key: pulumi.Input[str] | None = None
                           ) -> BenchmarkJobArgs | None:
    """The benchmark's args aimed at this stack's router and (by default) its first model."""
    if args.benchmark is None:
        return None
    first = next(iter(args.models.values())).served_name
    return dataclasses.replace(
        args.benchmark,
        namespace=args.namespace,
        base_url=args.benchmark.base_url or router_endpoint(stack_name, args.namespace),
        model=args.benchmark.model or first,
        rerun_key=args.benchmark.rerun_key or rerun_key,
    )


class LLMStack(pulumi.ComponentResource):
    """Engines, optional cache server, router, optional benchmark, and extension seams."""

    endpoint: pulumi.Output[str]
    """The router's in-cluster URL."""
    gpu_cache_tokens: pulumi.Output[dict[str, int]]
    """GPU KV capacity per engine pod, by model key."""
    cpu_cache_tokens: pulumi.Output[dict[str, int]]
    """LMCache CPU capacity per engine pod, by model key."""
    benchmark_results_hint: pulumi.Output[str | None]
    """How to read the benchmark results (None without a benchmark)."""
    engines: dict[str, VllmEngine]
    """Engine components by model key."""
    router: Router
    """The router component."""

    def __init__(self, name: str, args: LLMStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmstack:components:LLMStack", name, None, opts)
        child = kube.child_opts(self, opts)
        prereqs = self._prerequisites(name, args, child)
        child = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=prereqs))
        resolved = {key: resolve_engine_args(args, key, name) for key in args.models}
        self.engines = {key: VllmEngine(f"{name}-{key}", a, child) for key, a in resolved.items()}
        capacities = {key: e.capacity for key, e in self.engines.items()}
        awaited = max(a.await_timeout_s for a in resolved.values())
        drain = max(a.drain_s for a in resolved.values())
        self.router = Router(f"{name}-router", _router_args(args, capacities, awaited, drain), child)
        ctx = StackContext(
            namespace=args.namespace,
            engines=self.engines,
            engine_args=resolved,
            router=self.router,
            opts=child,
        )
        for seam in (args.monitoring, args.autoscaling):
            if seam is not None:
                seam.build(ctx)
        digest = serving_digest(resolved, args.router, settings_json(self.router.settings))
        self.benchmark_results_hint = self._benchmark(name, args, child, digest)
        self.endpoint = self.router.endpoint
        self.gpu_cache_tokens = pulumi.Output.from_input(
            {k: c.gpu_cache_tokens for k, c in capacities.items()}
        )
        self.cpu_cache_tokens = pulumi.Output.from_input(
            {k: c.cpu_cache_tokens for k, c in capacities.items()}
        )
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "gpu_cache_tokens": self.gpu_cache_tokens,
                "cpu_cache_tokens": self.cpu_cache_tokens,
                "benchmark_results_hint": self.benchmark_results_hint,
            }
        )

    def _prerequisites(
        self, name: str, args: LLMStackArgs, child: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        """Namespace, shared HF token Secret and LMCache server: what engines wait for."""
        made: list[pulumi.Resource] = []
        labels = object_labels("stack", name, None, args.labels)
        if args.create_namespace:
            made.append(
                kube.create(
                    f"{name}-namespace",
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": kube.metadata(args.namespace, None, labels | dict(args.namespace_labels)),
                    },
                    child,
                )
            )
        after_ns = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=list(made)))
        token = args.hf_token
        if token is not None and token.value is not None:
            manifest = kube.secret_manifest(token.name, args.namespace, labels, token.key, token.value)
            made.append(kube.create(f"{name}-hf-token", manifest, after_ns))
        if args.network_policies:
            port = args.lmcache_server.port if args.lmcache_server else None
            policies = build_network_policies(
                name,
                args.namespace,
                labels,
                cache_server_port=port,
                trusted_namespaces=args.trusted_namespaces,
                kv_events=any(engine.kv_events for engine in args.models.values()),
            )
            made += [kube.create(f"{name}-{key}", m, after_ns) for key, m in policies.items()]
        if args.lmcache_server is not None:
            server_args = dataclasses.replace(args.lmcache_server, namespace=args.namespace)
            made.append(LMCacheServer(f"{name}-lmcache", server_args, after_ns))
        return made

    def _benchmark(
        self, name: str, args: LLMStackArgs, child: pulumi.ResourceOptions, digest: pulumi.Output[str]
    ) -> pulumi.Output:
        bench = resolve_benchmark_args(args, name, digest)
        if bench is None:
            return pulumi.Output.from_input(None)
        after = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[*self.engines.values(), self.router])
        )
        return BenchmarkJob(f"{name}-bench", bench, after).results_hint


def _router_args(args: LLMStackArgs, capacities: dict[str, EngineCapacity], awaited: int,
                 drain: int) -> RouterArgs:
    """The router wired to the engines; Pulumi waits for it as long as for the slowest engine,
    it drains for as long as the engine with the longest drain (the longest request), and it
    subscribes to KV events when the engines publish them."""
    return dataclasses.replace(
        args.router, namespace=args.namespace, engines=capacities,
        kv_events=any(engine.kv_events for engine in args.models.values()),
        await_timeout_s=args.router.await_timeout_s or awaited,
        drain_s=max(args.router.drain_s, drain),
    )
