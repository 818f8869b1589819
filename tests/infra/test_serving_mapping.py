"""The pure config → `LLMStackArgs` mapping: placement, sizing, secrets, router and benchmark."""

from __future__ import annotations

import dataclasses

import pulumi
import pytest

from infra.config import parse_stack_config
from infra.config.catalog import INSTANCES
from infra.config.pools import NODE_POOL_LABEL
from infra.config.sizing import engine_memory_share_gib
from infra.errors import ConfigError
from infra.serving import ServingSecrets, stack_args
from stack_components import GPU_TOLERATION


def _args(raw, stack: str):
    config = parse_stack_config(raw(stack))
    return config, stack_args(config, ServingSecrets(hf_token="hf", router_api_keys="k1, k2"))


def test_engines_land_on_their_gpu_pool(raw):
    """Every engine selects its pool by label and tolerates the GPU taint; GPU type from the instance."""
    config, args = _args(raw, "prod")
    for name, engine in args.models.items():
        assert engine.placement.node_selector == {NODE_POOL_LABEL: config.models[name].node_pool}
        assert GPU_TOLERATION in engine.placement.tolerations
        assert engine.gpu == "A100-80GB"
    assert len(args.models) == 2


def test_engine_memory_fits_its_share_of_the_node(raw):
    """On every stack, engines' memory requests fit their GPUs' share of the node's RAM."""
    checked = 0
    for stack in ("dev", "staging", "prod"):
        config, args = _args(raw, stack)
        for name, engine in args.models.items():
            instance = INSTANCES[config.node_pools[config.models[name].node_pool].instance_type]
            assert engine.memory_gib <= engine_memory_share_gib(instance, engine.tensor_parallel_size)
            assert engine.cpu * (instance.gpus // engine.tensor_parallel_size) <= instance.vcpus
            checked += 1
    assert checked == 5  # dev 1, staging 2 (base + LoRA engines), prod 2


def test_lmcache_buffers_follow_the_config(raw):
    """LMCache CPU and disk tiers (GiB per TP rank) come from `llm-stack:lmcache`; every engine
    pod's memory holds one CPU buffer per rank (the 70B's four: 440 GiB, not 110); the shared
    server from its section."""
    _, args = _args(raw, "prod")
    assert {e.lmcache.cpu_buffer_gib for e in args.models.values()} == {110.0}
    assert {e.lmcache.disk_buffer_gib for e in args.models.values()} == {400.0}
    big = args.models["llama70b"]
    assert big.tensor_parallel_size == 4 and big.pod_memory_gib >= 4 * 110
    assert args.models["llama8b"].pod_memory_gib >= 110
    assert args.lmcache_server is not None and args.lmcache_server.max_memory_gib == 186


def test_router_and_benchmark_use_the_system_pool_and_keys(raw):
    """Router and benchmark run on the system pool; API keys become one per line, still secret."""
    _, args = _args(raw, "prod")
    assert args.router.placement.node_selector == {NODE_POOL_LABEL: "system"}
    assert args.benchmark.placement.node_selector == {NODE_POOL_LABEL: "system"}
    assert args.router.api_keys is not None and isinstance(args.router.api_keys.value, pulumi.Output)
    assert args.router.service_type == "LoadBalancer"
    annotations = args.router.service_annotations
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"


def test_router_behind_an_nlb_drains_every_stream_it_holds(raw):
    """prod's NLB: the namespace carries the readiness-gate label; the router waits 30 s before
    SIGTERM, drains for the longest engine request (the 70B's 65k tokens), and the NLB keeps a
    deregistering target's connections open for the wait plus the drain; dev (in-cluster) has
    neither the label nor the annotation."""
    _, args = _args(raw, "prod")
    drain = max(a.drain_s for a in args.models.values())
    assert args.router.drain_s == drain == args.models["llama70b"].drain_s
    assert args.router.prestop_s == 30
    assert args.namespace_labels == {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}
    key = "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
    attrs = args.router.service_annotations[key]
    assert attrs == f"deregistration_delay.timeout_seconds={30 + drain}"
    _, dev = _args(raw, "dev")
    assert dev.namespace_labels == {} and dev.router.service_annotations == {} and dev.router.prestop_s == 5
    assert args.benchmark.model == "meta-llama/Llama-3.1-8B-Instruct" and args.benchmark.users == 320


def test_disabled_parts_are_absent(raw):
    """dev has no shared cache server; a disabled benchmark is None."""
    config = raw("dev")
    config["benchmark"]["enabled"] = False
    args = stack_args(parse_stack_config(config), ServingSecrets(hf_token="hf", router_api_keys="k"))
    assert args.lmcache_server is None and args.benchmark is None


def test_kv_events_follow_the_stack_setting(raw):
    """Every engine publishes KV events by default; `llm-stack:kvEvents.enabled: false` turns them
    off for all of them; an unknown key under it is refused, named."""
    _, args = _args(raw, "prod")
    assert args.models and {e.kv_events for e in args.models.values()} == {True}
    config = raw("prod") | {"kvEvents": {"enabled": False}}
    args = stack_args(parse_stack_config(config), ServingSecrets(hf_token="hf", router_api_keys="k"))
    assert {e.kv_events for e in args.models.values()} == {False}
    with pytest.raises(ConfigError, match="kvEvents.port"):
        parse_stack_config(raw("prod") | {"kvEvents": {"port": 1}})


@pulumi.runtime.test
def test_benchmark_sends_exactly_one_router_key(raw):
    """The benchmark Job's key Secret holds the first router key alone, never the whole list."""
    _, args = _args(raw, "prod")
    ref = args.benchmark.api_key
    assert (ref.name, ref.key) == ("benchmark-api-key", "key")
    assert ref.name != args.router.api_keys.name

    def check(values):
        bench_key, router_keys = values
        assert bench_key == "k1"
        assert router_keys == "k1\nk2"

    return pulumi.Output.all(ref.value, args.router.api_keys.value).apply(check)


def test_kv_scoring_is_chosen_per_stack(raw):
    """`kvEvents.scoring` reaches the router's settings (`events` by default, `approximate` when
    asked); any other value is refused, naming the key, the value and what is allowed."""
    from stack_components.router import router_settings

    _, args = _args(raw, "prod")
    assert args.router.kv_scoring == "events"
    config = raw("prod") | {"kvEvents": {"scoring": "approximate"}}
    args = stack_args(parse_stack_config(config), ServingSecrets(hf_token="hf", router_api_keys="k"))
    assert args.router.kv_scoring == "approximate"
    settings = router_settings(dataclasses.replace(args.router, kv_events=True))
    assert settings.kv_events.scoring == "approximate"
    refused = r"kvEvents\.scoring must be one of events, approximate \(got 'exact'\)"
    with pytest.raises(ConfigError, match=refused):
        parse_stack_config(raw("prod") | {"kvEvents": {"scoring": "exact"}})


def test_prefix_is_the_sole_router_only_where_one_router_pod_can_run(raw):
    """dev runs one router pod and no router HPA: `prefix` is told it is the sole router (new
    conversations placed by load, its own index seeing every later round). staging (2 pods)
    and prod (3, HPA up to 8) keep rendezvous placement; an explicit setting is kept."""
    rendered = {s: dict(_args(raw, s)[1].router.policy.params) for s in ("dev", "staging", "prod")}
    assert rendered == {"dev": {"sole_router": True}, "staging": {}, "prod": {}}
    one_pod_hpa = raw("prod")
    one_pod_hpa["router"]["replicas"], one_pod_hpa["autoscaling"]["routerMaxReplicas"] = 1, 1
    assert dict(_args(lambda _: one_pod_hpa, "prod")[1].router.policy.params) == {"sole_router": True}
    explicit = raw("dev")
    explicit["router"]["policy"]["params"] = {"sole_router": False}
    assert dict(_args(lambda _: explicit, "dev")[1].router.policy.params) == {"sole_router": False}
