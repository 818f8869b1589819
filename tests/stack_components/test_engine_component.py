"""`VllmEngine` under the recording mocks: objects, GPU placement, probes, secrets, outputs."""

from __future__ import annotations

import dataclasses
import math

import pulumi
import pulumi_kubernetes as k8s
import pytest
from component_helpers import validate_all, walk

from contracts import ANNOTATION_CPU_CACHE_TOKENS, ANNOTATION_GPU_CACHE_TOKENS, ANNOTATION_SERVED_MODEL
from stack_components import (
    LMCacheArgs,
    ModelCacheVolume,
    Placement,
    SecretRef,
    Toleration,
    VllmEngine,
    VllmEngineArgs,
)
from stack_components.drain import TEARDOWN_S, longest_request_s
from stack_components.engine import engine_capacity
from stack_components.engine_manifests import build_engine_manifests
from stack_components.errors import ArgsError, CapacityError

ARGS = VllmEngineArgs(
    model="meta-llama/Llama-3.1-8B-Instruct",
    served_model_name="llama-8b",
    namespace="llm",
    tensor_parallel_size=2,
    lmcache=LMCacheArgs(cpu_buffer_gib=120, disk_buffer_gib=100),
    hf_token=SecretRef(name="hf-token", key="token"),
    placement=Placement(
        node_selector={"llmstack.io/pool": "a100"}, tolerations=(Toleration(key="nvidia.com/gpu"),)
    ),
)


def _container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _env(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_objects_validate_against_the_kubernetes_schema(deploy, k8s_objects) -> None:
    """Deployment, Service and PDB are valid Kubernetes 1.31 objects."""
    deploy(lambda: VllmEngine("llama-8b", ARGS))
    objects = k8s_objects()
    assert sorted(o["kind"] for o in objects) == ["Deployment", "PodDisruptionBudget", "Service"]
    assert validate_all(objects) == 3


def test_pvc_cache_and_inline_token_add_valid_pvc_and_secret(deploy, k8s_objects) -> None:
    """A pvc model cache and an HF token value add a PVC and a Secret, both valid."""
    args = dataclasses.replace(
        ARGS,
        model_cache=ModelCacheVolume(kind="pvc", size_gib=300, storage_class="gp3"),
        hf_token=SecretRef(name="hf-token", key="token", value="hf_secret"),
    )
    deploy(lambda: VllmEngine("llama-8b", args))
    objects = k8s_objects()
    assert {"PersistentVolumeClaim", "Secret"} <= {o["kind"] for o in objects}
    assert validate_all(objects) == 5
    volumes = k8s_objects("Deployment")[0]["spec"]["template"]["spec"]["volumes"]
    assert (
        volumes[0]["persistentVolumeClaim"]["claimName"]
        == k8s_objects("PersistentVolumeClaim")[0]["metadata"]["name"]
    )


def test_gpu_limits_placement_and_shared_memory(deploy, k8s_objects) -> None:
    """GPUs = TP, the pool's selector and toleration, a RAM /dev/shm counted in memory."""
    deploy(lambda: VllmEngine("llama-8b", ARGS))
    (dep,) = k8s_objects("Deployment")
    pod, container = dep["spec"]["template"]["spec"], _container(dep)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["nodeSelector"] == {"llmstack.io/pool": "a100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    # the processes (6 + 5 per TP rank) + one 120 GiB LMCache buffer per TP rank + 16 shm
    tp = ARGS.tensor_parallel_size
    assert container["resources"]["limits"]["memory"] == f"{6 + 5 * tp + math.ceil(120 * tp) + 16}Gi"
    disk = next(v for v in pod["volumes"] if v["name"] == "lmcache-disk")
    assert disk["emptyDir"]["sizeLimit"] == f"{100 * tp + 1}Gi"  # 100 GiB disk buffer per rank


def test_env_pins_hash_seed_reads_token_from_secret_and_sets_lmcache(deploy, k8s_objects) -> None:
    """PYTHONHASHSEED pinned, HF_TOKEN via secretKeyRef (never inline), LMCache keys present."""
    deploy(lambda: VllmEngine("llama-8b", ARGS))
    env = _env(_container(k8s_objects("Deployment")[0]))
    assert env["PYTHONHASHSEED"] == "0"
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
    # uid 10001 has no passwd entry in the image: getpass.getuser() reads USER/LOGNAME first
    assert (env["USER"], env["LOGNAME"], env["HOME"]) == ("vllm", "vllm", "/tmp")
    assert env["LMCACHE_MAX_LOCAL_CPU_SIZE"] == "120"
    assert env["LMCACHE_LOCAL_DISK"] == "file:///mnt/lmcache/"


def test_probes_allow_model_loading_time(deploy, k8s_objects) -> None:
    """The startup probe waits at least startup_timeout_s; readiness and liveness hit /health."""
    deploy(lambda: VllmEngine("llama-8b", ARGS))
    container = _container(k8s_objects("Deployment")[0])
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= ARGS.startup_timeout_s >= 20 * 60
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}


def test_security_context_is_restricted(deploy, k8s_objects) -> None:
    """No privilege escalation, all capabilities dropped, RuntimeDefault seccomp, non-root."""
    deploy(lambda: VllmEngine("llama-8b", ARGS))
    (dep,) = k8s_objects("Deployment")
    ctx = _container(dep)["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_capacity_is_annotated_on_pods_and_exported(deploy, k8s_objects) -> None:
    """The pods carry the capacity annotations and the outputs hold the same numbers."""
    seen: list[tuple] = []

    def build() -> pulumi.Output:
        engine = VllmEngine("llama-8b", ARGS)
        return pulumi.Output.all(
            engine.service_url, engine.gpu_cache_tokens, engine.cpu_cache_tokens, engine.served_model_name
        ).apply(lambda v: seen.append(tuple(v)))

    deploy(build)
    capacity = engine_capacity(ARGS)
    assert seen == [
        (
            "http://llama-8b.llm.svc.cluster.local:8000",
            capacity.gpu_cache_tokens,
            capacity.cpu_cache_tokens,
            "llama-8b",
        )
    ]
    annotations = k8s_objects("Deployment")[0]["spec"]["template"]["metadata"]["annotations"]
    assert annotations[ANNOTATION_GPU_CACHE_TOKENS] == str(capacity.gpu_cache_tokens)
    assert annotations[ANNOTATION_CPU_CACHE_TOKENS] == str(capacity.cpu_cache_tokens)
    assert annotations[ANNOTATION_SERVED_MODEL] == "llama-8b"
    assert annotations["prometheus.io/port"] == "8000"


def test_rendered_manifests_hold_no_floats() -> None:
    """Counts and sizes are ints or strings in the rendered manifests (the mocks return floats)."""
    manifests = build_engine_manifests("llama-8b", ARGS, engine_capacity(ARGS))
    scalars = [s for m in manifests.values() for s in walk(m)]
    assert len(scalars) > 100
    assert not [s for s in scalars if isinstance(s, float)]


def test_seventy_b_on_one_gpu_fails_before_any_resource(deploy, pulumi_mocks) -> None:
    """A model whose weights do not fit raises CapacityError and registers nothing."""
    args = dataclasses.replace(ARGS, model="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=1)
    with pytest.raises(CapacityError, match="70B"):
        deploy(lambda: VllmEngine("big", args))
    assert [r for r in pulumi_mocks.resources if r.custom] == []


def test_max_model_len_larger_than_the_cache_fails() -> None:
    """A max_model_len that exceeds the KV cache is a CapacityError."""
    args = dataclasses.replace(
        ARGS, model="meta-llama/Llama-3.2-1B", gpu="A10G-24GB", max_model_len=10_000_000
    )
    with pytest.raises(CapacityError, match="max_model_len"):
        engine_capacity(args)


def test_children_use_the_provider_given_in_opts(deploy, pulumi_mocks, monkeypatch) -> None:
    """Any Kubernetes provider passed in opts reaches every child object."""
    providers: dict[str, str | None] = {}
    original = pulumi_mocks.new_resource

    def spy(args):
        providers[args.name] = args.provider
        return original(args)

    monkeypatch.setattr(pulumi_mocks, "new_resource", spy)

    def build() -> None:
        provider = k8s.Provider("other-cluster", kubeconfig="apiVersion: v1")
        VllmEngine("llama-8b", ARGS, pulumi.ResourceOptions(provider=provider))

    deploy(build)
    children = {n: p for n, p in providers.items() if n.startswith("llama-8b-")}
    assert len(children) == 3
    assert all(p and "other-cluster" in p for p in children.values())


def test_autoscaled_engine_leaves_replicas_to_the_autoscaler(deploy, monkeypatch) -> None:
    """With replicas_managed_externally the Deployment ignores spec.replicas drift; otherwise not."""
    from infra.mocks import RecordingMonitor

    ignored: dict[str, list[str]] = {}
    original = RecordingMonitor.RegisterResource

    def spy(self, request):
        if request.type == "kubernetes:apps/v1:Deployment":
            ignored[request.name] = list(request.ignoreChanges)
        return original(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", spy)
    scaled = dataclasses.replace(ARGS, replicas_managed_externally=True)
    deploy(lambda: (VllmEngine("scaled", scaled), VllmEngine("fixed", ARGS)))
    assert ignored == {"scaled-deployment": ["spec.replicas"], "fixed-deployment": []}


def test_scale_target_and_selector_match_the_deployment(deploy, k8s_objects) -> None:
    """`deployment_name` and `selector` name the Deployment and select its pods."""
    seen: list[str] = []
    holder: list[VllmEngine] = []

    def build() -> pulumi.Output:
        holder.append(VllmEngine("llama-8b", ARGS))
        return holder[0].deployment_name.apply(seen.append)

    deploy(build)
    (dep,) = k8s_objects("Deployment")
    assert seen == [dep["metadata"]["name"]] == [holder[0].object_name]
    assert dep["spec"]["selector"]["matchLabels"] == holder[0].selector


def _flag(container: dict, name: str) -> str:
    args = container["args"]
    return args[args.index(name) + 1]


def test_engines_drain_in_flight_requests_within_their_grace(deploy, k8s_objects) -> None:
    """vLLM drains on SIGTERM for the longest request the engine allows (its default 0 aborts);
    the pod's grace period covers that drain and the teardown; the progress deadline covers a
    drain followed by a full startup; a set drain_timeout_s wins."""
    deploy(lambda: VllmEngine("llama-8b", ARGS))
    deploy(lambda: VllmEngine("short", dataclasses.replace(ARGS, drain_timeout_s=90)))
    checked = 0
    drains = (longest_request_s(ARGS.max_model_len), 90)
    for dep, drain_s in zip(k8s_objects("Deployment"), drains, strict=True):
        pod = dep["spec"]["template"]["spec"]
        assert int(_flag(_container(dep), "--shutdown-timeout")) == drain_s > 0
        assert pod["terminationGracePeriodSeconds"] == drain_s + TEARDOWN_S
        assert dep["spec"]["progressDeadlineSeconds"] >= drain_s + ARGS.startup_timeout_s
        checked += 1
    assert checked == 2


def test_await_covers_a_rollout_of_the_most_engines(deploy, k8s_objects) -> None:
    """Pulumi's await on a 24-engine model covers 7 steps (25 % at a time, rounded down) of
    drain + load, more than the old fixed 2,400 s; the strategy never surges a GPU pod."""
    args = dataclasses.replace(ARGS, load_time_s=180, replicas=8, rollout_max_replicas=24)
    deploy(lambda: VllmEngine("llama-8b", args))
    (dep,) = k8s_objects("Deployment")
    awaited = int(dep["metadata"]["annotations"]["pulumi.com/timeoutSeconds"])
    assert awaited >= 7 * (args.termination_grace_s + 180) > 2400
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": "25%"}
    with pytest.raises(ArgsError, match="rollout_max_replicas"):
        dataclasses.replace(ARGS, replicas=8, rollout_max_replicas=4)


@pytest.mark.parametrize("kv_events", [True, False])
def test_kv_events_open_their_ports_and_name_the_pod_ip(kv_events) -> None:
    """With KV events the container exposes the events and replay ports, reads POD_IP from its
    status and has LMCache republish its stores; without, none of the four."""
    args = dataclasses.replace(ARGS, kv_events=kv_events)
    container = _container(build_engine_manifests("llama-8b", args, engine_capacity(args))["deployment"])
    env = _env(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ("--kv-events-config" in container["args"]) is kv_events
    if kv_events:
        assert ports == {"http": 8000, "kv-events": 5557, "kv-replay": 5558}
        assert env["POD_IP"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}
        assert env["LMCACHE_ENABLE_KV_EVENTS"] == "True"
    else:
        assert ports == {"http": 8000}
        assert "POD_IP" not in env and "LMCACHE_ENABLE_KV_EVENTS" not in env
