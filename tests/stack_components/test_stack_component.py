"""`LLMStack` under the recording mocks: composition, wiring of capacities and URLs, seams."""

from __future__ import annotations

import json

import pulumi
from component_helpers import validate_all

from router.settings import RouterSettings
from stack_components import (
    BenchmarkJobArgs,
    LLMStack,
    LLMStackArgs,
    LMCacheArgs,
    LMCacheServerArgs,
    RouterArgs,
    SecretRef,
    StackContext,
    VllmEngineArgs,
)
from stack_components.engine import engine_capacity

HF_TOKEN = "hf_very_secret_value"
API_KEYS = "sk-one\nsk-two"


class RecordingExtension:
    """A fake seam that records the context it was given."""

    def __init__(self) -> None:
        self.contexts: list[StackContext] = []

    def build(self, ctx: StackContext) -> None:
        self.contexts.append(ctx)


def _args(**overrides) -> LLMStackArgs:
    models = {
        "llama-8b": VllmEngineArgs(
            model="meta-llama/Llama-3.1-8B-Instruct",
            served_model_name="llama-8b",
            replicas=2,
            lmcache=LMCacheArgs(cpu_buffer_gib=120),
        ),
        "llama-70b": VllmEngineArgs(
            model="meta-llama/Llama-3.1-70B-Instruct",
            served_model_name="llama-70b",
            tensor_parallel_size=4,
            lmcache=LMCacheArgs(cpu_buffer_gib=200),
        ),
    }
    base = {
        "namespace": "llm",
        "models": models,
        "router": RouterArgs(
            image="ghcr.io/example/router:1.0",
            api_keys=SecretRef(name="router-api-keys", key="keys", value=API_KEYS),
        ),
        "hf_token": SecretRef(name="hf-token", key="token", value=HF_TOKEN),
        "lmcache_server": LMCacheServerArgs(),
        "benchmark": BenchmarkJobArgs(image="ghcr.io/example/llm-stack:1.0"),
    }
    return LLMStackArgs(**(base | overrides))


def test_every_object_validates_and_lives_in_the_namespace(deploy, k8s_objects) -> None:
    """All objects of a two-model stack validate and are namespaced in the stack's namespace."""
    deploy(lambda: LLMStack("llm", _args()))
    objects = k8s_objects()
    kinds = [o["kind"] for o in objects]
    assert kinds.count("Deployment") == 4  # two engines, cache server, router
    assert kinds.count("Namespace") == 1 and kinds.count("Job") == 1
    assert kinds.count("NetworkPolicy") == 4
    assert validate_all(objects) == len(objects) == 26
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"llm"}


def test_router_settings_carry_the_engines_capacities(deploy, k8s_objects) -> None:
    """The router's models are the served names and its defaults the smallest engine capacity."""
    args = _args()
    deploy(lambda: LLMStack("llm", args))
    (cm,) = k8s_objects("ConfigMap")
    settings = RouterSettings.from_dict(json.loads(next(iter(cm["data"].values()))))
    capacities = [engine_capacity(a) for a in args.models.values()]
    assert settings.models == ("llama-8b", "llama-70b")
    assert settings.default_gpu_cache_tokens == min(c.gpu_cache_tokens for c in capacities)
    assert settings.default_cpu_cache_tokens == min(c.cpu_cache_tokens for c in capacities)


def test_router_drains_as_long_as_the_longest_engine_request(deploy, k8s_objects) -> None:
    """The router's drain is raised to the engines' longest (the 70B here, 32k tokens): a stream
    through a terminating router pod lasts as long as one on an engine may; namespace labels
    given reach the namespace."""
    args = _args(namespace_labels={"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"})
    deploy(lambda: LLMStack("llm", args))
    (cm,) = k8s_objects("ConfigMap")
    settings = RouterSettings.from_dict(json.loads(next(iter(cm["data"].values()))))
    longest = max(a.drain_s for a in args.models.values())
    assert longest > args.router.drain_s and settings.drain_s == longest
    (ns,) = k8s_objects("Namespace")
    assert ns["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"


def test_engines_share_the_token_secret_and_the_cache_server(deploy, k8s_objects) -> None:
    """One HF token Secret for all engines; LMCACHE_REMOTE_URL points at the stack's cache server."""
    deploy(lambda: LLMStack("llm", _args()))
    engines = [
        d for d in k8s_objects("Deployment") if d["metadata"]["name"] in ("llm-llama-8b", "llm-llama-70b")
    ]
    assert len(engines) == 2
    for dep in engines:
        env = {
            e["name"]: e.get("value", e.get("valueFrom"))
            for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
        assert env["LMCACHE_REMOTE_URL"] == "redis://llm-lmcache.llm.svc.cluster.local:6379"
    assert [s["metadata"]["name"] for s in k8s_objects("Secret")] == ["hf-token", "router-api-keys"]


def test_no_secret_value_reaches_any_config_map_or_recorded_input(deploy, k8s_objects, pulumi_mocks) -> None:
    """Token and API keys appear nowhere in ConfigMaps nor in any recorded input (redacted)."""
    deploy(lambda: LLMStack("llm", _args()))
    config_maps = k8s_objects("ConfigMap")
    assert len(config_maps) == 1
    dumped = json.dumps([r.inputs for r in pulumi_mocks.resources])
    assert len(pulumi_mocks.resources) > 20
    for secret in (HF_TOKEN, "sk-one", "sk-two"):
        assert secret not in json.dumps(config_maps) and secret not in dumped


def test_benchmark_targets_the_router_after_engines_and_router(deploy, k8s_objects) -> None:
    """The Job benchmarks the router's URL with the first model; its hint is a stack output."""
    seen: list[tuple] = []

    def build() -> pulumi.Output:
        s = LLMStack("llm", _args())
        return pulumi.Output.all(
            s.endpoint, s.benchmark_results_hint, s.gpu_cache_tokens, s.cpu_cache_tokens
        ).apply(lambda v: seen.append(tuple(v)))

    deploy(build)
    (job,) = k8s_objects("Job")
    args = job["spec"]["template"]["spec"]["initContainers"][0]["args"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    ((endpoint, hint, gpu, cpu),) = seen
    assert endpoint == "http://llm-router.llm.svc.cluster.local:8080" == flags["--base-url"]
    assert flags["--model"] == "llama-8b"
    assert "configmap llm-bench-results" in hint
    assert set(gpu) == set(cpu) == {"llama-8b", "llama-70b"}
    assert cpu["llama-8b"] > gpu["llama-8b"] > 0


def test_benchmark_depends_on_engines_and_router(deploy, monkeypatch) -> None:
    """The Job itself waits on the engine and router Deployments (component deps expand to children)."""
    from infra.mocks import RecordingMonitor

    captured: list[list[str]] = []
    original = RecordingMonitor.RegisterResource

    def spy(self, request):
        if request.type == "kubernetes:batch/v1:Job":
            captured.append(sorted(u.rsplit("::", 1)[-1] for u in request.dependencies))
        return original(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", spy)
    deploy(lambda: LLMStack("llm", _args()))
    (deps,) = captured
    assert {"llm-llama-8b-deployment", "llm-llama-70b-deployment", "llm-router-deployment"} <= set(deps)


def test_seams_receive_engines_and_router(deploy) -> None:
    """Monitoring and autoscaling extensions are called once with the built engines and router."""
    monitoring, autoscaling = RecordingExtension(), RecordingExtension()
    deploy(lambda: LLMStack("llm", _args(monitoring=monitoring, autoscaling=autoscaling, benchmark=None)))
    for seam in (monitoring, autoscaling):
        (ctx,) = seam.contexts
        assert ctx.namespace == "llm" and set(ctx.engines) == {"llama-8b", "llama-70b"}
        assert ctx.engine_args["llama-8b"].namespace == "llm"
        assert ctx.router is not None and ctx.opts.parent is not None


def test_existing_namespace_and_no_optional_parts(deploy, k8s_objects) -> None:
    """Without namespace creation, cache server, token or benchmark only engines and router remain."""
    args = _args(create_namespace=False, lmcache_server=None, hf_token=None, benchmark=None)
    deploy(lambda: LLMStack("llm", args))
    kinds = sorted(o["kind"] for o in k8s_objects())
    assert "Namespace" not in kinds and "Job" not in kinds
    assert kinds.count("Deployment") == 3
    env_names = {
        e["name"]
        for d in k8s_objects("Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
    }
    assert "LMCACHE_REMOTE_URL" not in env_names and "HF_TOKEN" not in env_names


def test_network_policies_limit_who_reaches_engines_and_cache(deploy, k8s_objects) -> None:
    """Engines admit only stack pods and trusted namespaces, their KV-event ports only the router;
    cache server only engines; bench nothing."""
    deploy(lambda: LLMStack("llm", _args(trusted_namespaces=("monitoring",))))
    policies = {p["metadata"]["name"]: p["spec"] for p in k8s_objects("NetworkPolicy")}
    assert set(policies) == {"llm-engines", "llm-router", "llm-benchmark", "llm-cache-server"}
    engine_rule, events_rule = policies["llm-engines"]["ingress"]
    assert engine_rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert engine_rule["from"][1]["namespaceSelector"]["matchExpressions"][0]["values"] == ["monitoring"]
    # the KV-event and replay sockets: the router's pods only, not the trusted namespaces
    assert events_rule["ports"] == [{"protocol": "TCP", "port": 5557}, {"protocol": "TCP", "port": 5558}]
    peers = [peer["podSelector"]["matchLabels"]["llmstack.io/role"] for peer in events_rule["from"]]
    assert peers == ["router"]
    (cache_rule,) = policies["llm-cache-server"]["ingress"]
    assert cache_rule["from"][0]["podSelector"]["matchLabels"]["llmstack.io/role"] == "engine"
    assert policies["llm-benchmark"]["ingress"] == []


def test_engines_without_kv_events_keep_their_event_ports_closed(deploy, k8s_objects) -> None:
    """When no engine publishes KV events, the engines' policy admits only the API port."""
    import dataclasses

    models = {k: dataclasses.replace(m, kv_events=False) for k, m in _args().models.items()}
    deploy(lambda: LLMStack("llm", _args(models=models)))
    (engines,) = [p["spec"] for p in k8s_objects("NetworkPolicy") if p["metadata"]["name"] == "llm-engines"]
    assert [rule["ports"] for rule in engines["ingress"]] == [[{"protocol": "TCP", "port": 8000}]]


def test_network_policies_can_be_turned_off(deploy, k8s_objects) -> None:
    """With network_policies=False no NetworkPolicy is created."""
    deploy(lambda: LLMStack("llm", _args(network_policies=False)))
    assert k8s_objects("Deployment") and not k8s_objects("NetworkPolicy")
