"""Pure builders of a `VllmEngine`'s Kubernetes manifests (Deployment, Service, PDB, and the
optional Secret and PVC)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from contracts import (
    ANNOTATION_CPU_CACHE_TOKENS,
    ANNOTATION_GPU_CACHE_TOKENS,
    ANNOTATION_SERVED_MODEL,
    ENGINE_PORT,
    PATH_METRICS,
    ROLE_ENGINE,
)
from contracts.kv_events import (
    KV_EVENTS_PORT,
    KV_EVENTS_PORT_NAME,
    KV_REPLAY_PORT,
    KV_REPLAY_PORT_NAME,
    POD_IP_ENV,
)
from stack_components import kube
from stack_components.compile_cache import compile_cache_dir, compile_cache_env
from stack_components.labels import object_labels, prometheus_annotations, selector_labels
from stack_components.lmcache import lmcache_env
from stack_components.lora import check_init_container, fetch_init_containers, render_lora_args
from stack_components.model_store import local_model_dir, service_account_manifest, sync_init_container
from stack_components.vllm_args import VllmServerConfig, render_vllm_args

if TYPE_CHECKING:
    from stack_components.engine import EngineCapacity, VllmEngineArgs

PORT_NAME = "http"
ENGINE_USER = "vllm"
PROBE_PERIOD_S = 10
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"  # how long Pulumi awaits the rollout


def build_engine_manifests(name: str, args: VllmEngineArgs, capacity: EngineCapacity) -> dict[str, dict]:
    """Every object of one engine, keyed by a stable kind key (the Pulumi name suffix)."""
    out: dict[str, dict] = {}
    if args.hf_token is not None and args.hf_token.value is not None:
        out["hf-token"] = kube.secret_manifest(
            args.hf_token.name, args.namespace, _labels(name, args), args.hf_token.key, args.hf_token.value
        )
    if args.model_cache.kind == "pvc":
        out["model-cache"] = build_pvc(name, args)
    if args.model_store is not None:
        out["service-account"] = service_account_manifest(args.model_store, args.namespace,
                                                          _labels(name, args))
    out["deployment"] = build_deployment(name, args, capacity)
    out["service"] = build_service(name, args)
    out["pdb"] = build_pdb(name, args)
    return out


def _labels(name: str, args: VllmEngineArgs) -> dict[str, str]:
    return object_labels(ROLE_ENGINE, name, args.served_name, args.labels)


def _selector(name: str, args: VllmEngineArgs) -> dict[str, str]:
    return selector_labels(ROLE_ENGINE, name, args.served_name)


def build_service(name: str, args: VllmEngineArgs) -> dict[str, Any]:
    """ClusterIP Service on the engine port (API and /metrics).

    Pulumi awaits a Service with a selector until none of its endpoints is not-ready, 10 minutes
    by default (pulumi-kubernetes provider/pkg/await/service.go, `DefaultServiceTimeoutMins`);
    a loading engine is a not-ready endpoint, so the Service gets its Deployment's timeout
    (`pulumi.com/timeoutSeconds`, read by metadata.TimeoutDuration, also for delete)."""
    awaited = {TIMEOUT_ANNOTATION: str(args.await_timeout_s)}
    annotations = prometheus_annotations(ENGINE_PORT, PATH_METRICS) | awaited
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": kube.metadata(name, args.namespace, _labels(name, args), annotations),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(name, args),
            "ports": [{"name": PORT_NAME, "port": ENGINE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def build_pdb(name: str, args: VllmEngineArgs) -> dict[str, Any]:
    """At most `max_unavailable` engine pods voluntarily disrupted at once."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": kube.metadata(name, args.namespace, _labels(name, args)),
        "spec": {"maxUnavailable": args.max_unavailable, "selector": {"matchLabels": _selector(name, args)}},
    }


def build_pvc(name: str, args: VllmEngineArgs) -> dict[str, Any]:
    """The model cache claim (ReadWriteOnce; one per engine)."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": kube.gib(args.model_cache.size_gib)}},
    }
    if args.model_cache.storage_class:
        spec["storageClassName"] = args.model_cache.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": kube.metadata(f"{name}-model-cache", args.namespace, _labels(name, args)),
        "spec": spec,
    }


def build_deployment(name: str, args: VllmEngineArgs, capacity: EngineCapacity) -> dict[str, Any]:
    """The engine Deployment; replaced in place, a share at a time (GPUs are scarce: no surge
    pod), awaited for as long as a rolling update of its most engines may take."""
    timeout = str(args.await_timeout_s)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": kube.metadata(
            name,
            args.namespace,
            _labels(name, args),
            {TIMEOUT_ANNOTATION: timeout},
        ),
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": _selector(name, args)},
            # with no surge pod, a new pod waits for its GPU while the old one drains, then loads:
            # no progress is reported meanwhile
            "progressDeadlineSeconds": args.termination_grace_s + args.startup_timeout_s + 300,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": 0, "maxUnavailable": f"{args.rollout_max_unavailable_percent}%"}},
            "template": {"metadata": _pod_metadata(name, args, capacity), "spec": build_pod_spec(name, args)},
        },
    }


def _pod_metadata(name: str, args: VllmEngineArgs, capacity: EngineCapacity) -> dict[str, Any]:
    annotations = (
        dict(args.pod_annotations)
        | prometheus_annotations(ENGINE_PORT, PATH_METRICS)
        | {
            ANNOTATION_GPU_CACHE_TOKENS: str(capacity.gpu_cache_tokens),
            ANNOTATION_CPU_CACHE_TOKENS: str(capacity.cpu_cache_tokens),
            ANNOTATION_SERVED_MODEL: capacity.served_model_name,
        }
    )
    return {"labels": _labels(name, args), "annotations": annotations}


def build_pod_spec(name: str, args: VllmEngineArgs) -> dict[str, Any]:
    """The engine pod: one vLLM container on the GPU pool."""
    spec: dict[str, Any] = {
        "securityContext": kube.pod_security_context(args.run_as_user),
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": args.termination_grace_s,
        "containers": [build_container(args)],
        **_init_containers(args),
        "volumes": build_volumes(name, args),
        "tolerations": [t.to_manifest() for t in args.placement.tolerations],
    }
    if args.model_store is not None:
        spec["serviceAccountName"] = args.model_store.service_account
    if args.placement.node_selector:
        spec["nodeSelector"] = dict(args.placement.node_selector)
    return spec | args.placement.pod_fields(_selector(name, args))


def _init_containers(args: VllmEngineArgs) -> dict[str, Any]:
    """The cache owner first (a hostPath cache), then the S3 copy (a model store), then one
    fetch per LoRA adapter and the adapters' check, in that order."""
    inits = [*_cache_owner_init(args)]
    if args.model_store is not None:
        inits.append(sync_init_container(args.model_store, model=args.model, revision=args.revision,
                                         mount_path=args.model_cache.mount_path))
    if args.lora is not None:
        token = (args.hf_token.name, args.hf_token.key) if args.hf_token is not None else None
        inits += fetch_init_containers(args.lora, image=args.image, store=args.model_store,
                                       mount_path=args.model_cache.mount_path, hf_token=token)
        inits.append(check_init_container(args.lora, image=args.image, model=args.model,
                                          mount_path=args.model_cache.mount_path))
    return {"initContainers": inits} if inits else {}


def _cache_owner_init(args: VllmEngineArgs) -> list[dict[str, Any]]:
    """A hostPath model cache is created root-owned by the kubelet (and fsGroup does not apply
    to hostPath): one root init container with only CAP_CHOWN hands the directory to the
    engine's uid. Nothing for other cache kinds or when the pod keeps the image's user."""
    if args.model_cache.kind != "hostPath" or args.run_as_user is None:
        return []
    uid = args.run_as_user
    ctx = kube.container_security_context(read_only_root=True)
    ctx |= {"runAsUser": 0, "runAsNonRoot": False, "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}
    return [{
        "name": "model-cache-owner",
        "image": args.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["chown", f"{uid}:{uid}", args.model_cache.mount_path],
        "resources": kube.resources(cpu=0.1, memory_gib=0.25),
        "securityContext": ctx,
        "volumeMounts": [{"name": "model-cache", "mountPath": args.model_cache.mount_path}],
    }]


def build_container(args: VllmEngineArgs) -> dict[str, Any]:
    """The vLLM container: args, env, GPUs, probes sized for model loading, mounts."""
    # with a model store vLLM loads the copied directory (no --revision: a local path has none);
    # `--model` is a "name or path" and `--served-model-name` names it in the API and metrics
    # (vllm/config/model.py, ModelConfig.model and served_model_name, at VLLM_VERSION)
    local = args.model_store is not None
    model = local_model_dir(args.model_cache.mount_path, args.model, args.revision) if local else args.model
    config = VllmServerConfig(
        model=model,
        revision=None if local else args.revision,
        served_model_name=args.served_name,
        tensor_parallel_size=args.tensor_parallel_size,
        max_model_len=args.max_model_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        enable_prefix_caching=args.enable_prefix_caching,
        lmcache=args.lmcache is not None,
        shutdown_timeout_s=args.drain_s,
        kv_events=args.kv_events,
        lora_args=tuple(render_lora_args(args.lora, args.model_cache.mount_path)) if args.lora else (),
        extra_args=args.extra_args,
    )
    return {
        "name": "vllm",
        "image": args.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(args.command),
        "args": render_vllm_args(config),
        "env": build_env(args),
        "ports": build_ports(args),
        "resources": kube.resources(
            cpu=args.cpu, memory_gib=args.pod_memory_gib, gpus=args.tensor_parallel_size
        ),
        "securityContext": kube.container_security_context(read_only_root=False),
        "startupProbe": kube.http_probe(
            PORT_NAME,
            period_s=PROBE_PERIOD_S,
            timeout_s=5,
            failures=math.ceil(args.startup_timeout_s / PROBE_PERIOD_S),
        ),
        "readinessProbe": kube.http_probe(PORT_NAME, period_s=5, timeout_s=3, failures=3),
        "livenessProbe": kube.http_probe(PORT_NAME, period_s=15, timeout_s=10, failures=4),
        "volumeMounts": build_mounts(args),
    }


def build_ports(args: VllmEngineArgs) -> list[dict[str, Any]]:
    """The API port, then (with KV events) vLLM's event PUB and replay ROUTER sockets."""
    ports = [(PORT_NAME, ENGINE_PORT)]
    if args.kv_events:
        ports += [(KV_EVENTS_PORT_NAME, KV_EVENTS_PORT), (KV_REPLAY_PORT_NAME, KV_REPLAY_PORT)]
    return [{"name": name, "containerPort": port, "protocol": "TCP"} for name, port in ports]


METRICS_DIR = "/var/run/prometheus-multiproc"
"""Where every process of the engine writes its Prometheus samples, so that /metrics (served by
the API-server process) also has the engine core's and the TP workers' series: LMCache's
counters live there. vLLM 0.33 reads the multiprocess registry only when
PROMETHEUS_MULTIPROC_DIR is set (vllm/v1/metrics/prometheus.py, get_prometheus_registry) and
sets it itself only with several API servers (vllm/entrypoints/cli/serve.py); production-stack
sets it on the container (helm/templates/deployment-vllm-multi.yaml)."""
METRICS_DIR_GIB = 1  # prometheus_client mmaps 1 MiB per process and metric type; a TP-8 pod has ~10 processes


def build_env(args: VllmEngineArgs) -> list[dict[str, Any]]:
    """HF cache location, the compile caches beside it (`compile_cache`), pinned hash seed, the
    multiprocess metrics directory, LMCache settings, the HF token from its Secret, the pod IP
    (the KV events' topic names it)."""
    env = {
        "HF_HOME": args.model_cache.mount_path,
        "HOME": "/tmp",
        "PYTHONHASHSEED": str(args.python_hash_seed),
        "PROMETHEUS_MULTIPROC_DIR": METRICS_DIR,
    }
    env |= compile_cache_env(compile_cache_dir(args.model_cache.mount_path, args.model, args.revision))
    if args.model_store is not None:  # weights are local: never reach the hub
        env["HF_HUB_OFFLINE"] = "1"
    if args.run_as_user is not None:  # no passwd entry for the uid: name it for getpass.getuser()
        env |= {"USER": ENGINE_USER, "LOGNAME": ENGINE_USER}
    if args.lmcache is not None:
        env |= lmcache_env(args.lmcache, kv_events=args.kv_events)
    items: list[dict[str, Any]] = kube.plain_env(env)
    if args.hf_token is not None:
        items.append(kube.secret_env("HF_TOKEN", args.hf_token.name, args.hf_token.key))
    if args.kv_events:
        items.append(kube.field_env(POD_IP_ENV, "status.podIP"))
    return items


def build_volumes(name: str, args: VllmEngineArgs) -> list[dict[str, Any]]:
    """Model cache, RAM-backed /dev/shm, /tmp, the metrics directory, the LMCache disk tier if enabled."""
    cache = args.model_cache
    if cache.kind == "pvc":
        model_volume: dict[str, Any] = {
            "name": "model-cache",
            "persistentVolumeClaim": {"claimName": f"{name}-model-cache"},
        }
    elif cache.kind == "hostPath":
        model_volume = {
            "name": "model-cache",
            "hostPath": {"path": cache.host_path, "type": "DirectoryOrCreate"},
        }
    else:
        model_volume = kube.empty_dir("model-cache", cache.size_gib)
    volumes = [
        model_volume,
        kube.empty_dir("dshm", args.shm_size_gib, memory=True),
        kube.empty_dir("tmp", 20),
        # its own volume, so the directory exists before any process writes to it (a container
        # restart keeps the old files: counters continue, vLLM's gauges are "mostrecent")
        kube.empty_dir("metrics", METRICS_DIR_GIB),
    ]
    if args.lmcache is not None and args.lmcache.disk_buffer_gib > 0:
        # one disk buffer per TP rank (LMCache shards the directory by GPU), plus 1 GiB slack
        size = args.lmcache.disk_buffer_gib * args.tensor_parallel_size + 1
        volumes.append(kube.empty_dir("lmcache-disk", size))
    return volumes


def build_mounts(args: VllmEngineArgs) -> list[dict[str, Any]]:
    """Mount points matching `build_volumes`."""
    mounts = [
        {"name": "model-cache", "mountPath": args.model_cache.mount_path},
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "metrics", "mountPath": METRICS_DIR},
    ]
    if args.lmcache is not None and args.lmcache.disk_buffer_gib > 0:
        mounts.append({"name": "lmcache-disk", "mountPath": args.lmcache.disk_path})
    return mounts
