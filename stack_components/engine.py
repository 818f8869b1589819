"""`VllmEngine`: one model served by vLLM (+ LMCache) as a Deployment, a Service and a
PodDisruptionBudget, with its KV-cache capacity computed and exported."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from contracts import ENGINE_PORT, ROLE_ENGINE
from router.settings import Deadlines
from stack_components import _validate as v
from stack_components.capacity import (
    DEFAULT_ACTIVATION_RESERVE_GB,
    GpuSpec,
    ModelSpec,
    cpu_cache_tokens,
    find_gpu,
    find_model,
    gpu_cache_tokens,
)
from stack_components.common import GPU_PLACEMENT, ModelCacheVolume, Placement, SecretRef
from stack_components.deadlines import engine_deadlines
from stack_components.drain import engine_grace_s, longest_request_s, rollout_await_s, rollout_steps
from stack_components.engine_manifests import build_engine_manifests
from stack_components.errors import CapacityError
from stack_components.host_memory import process_memory_gib
from stack_components.kube import child_opts, create
from stack_components.labels import selector_labels
from stack_components.lmcache import LMCacheArgs
from stack_components.lora import LoraArgs, check_s3_sources
from stack_components.model_store import ModelStore
from stack_components.naming import object_name, service_host
from stack_components.versions import ENGINE_IMAGE, VLLM_COMMAND
from stack_components.vllm_args import check_extra_args

DEFAULT_ENGINE_IMAGE = ENGINE_IMAGE
DEFAULT_COMMAND = VLLM_COMMAND


@dataclass(frozen=True, kw_only=True)
class VllmEngineArgs:
    """Everything one `VllmEngine` needs. Sizes in GiB are Kubernetes quantities; LMCache
    buffers and capacity arithmetic use decimal GB (see `capacity`)."""

    model: str
    """Hugging Face model id, e.g. "meta-llama/Llama-3.1-8B-Instruct"."""
    revision: str = "main"
    """Model revision (a commit sha pins it); passed as --revision."""
    served_model_name: str | None = None
    """Name clients request; None serves under `model`."""
    model_spec: ModelSpec | None = None
    """Model shape for capacity sizing; None looks `model` up in `capacity.MODELS`."""
    gpu: str | GpuSpec = "A100-80GB"
    """GPU the pods land on: a `capacity.GPUS` key or a GpuSpec."""
    namespace: str = "default"
    """Namespace of every object (`LLMStack` sets it to the stack's namespace)."""
    image: str = DEFAULT_ENGINE_IMAGE
    """vLLM image with LMCache installed, pinned by tag or digest."""
    command: tuple[str, ...] = DEFAULT_COMMAND
    """Server entry point (the image's `/opt/venv/bin/vllm serve`); the model and flags follow it."""
    replicas: int = 1
    """Engine pods (each holds `tensor_parallel_size` GPUs); the initial count when autoscaled."""
    replicas_managed_externally: bool = False
    """True when an autoscaler (KEDA/HPA) owns `spec.replicas`: Pulumi then ignores its drift."""
    tensor_parallel_size: int = 1
    """GPUs per engine pod (1, 2, 4 or 8); also the pod's `nvidia.com/gpu` limit."""
    max_model_len: int = 32_768
    """Longest sequence (prompt + output) in tokens; one must fit the GPU KV cache."""
    gpu_memory_utilization: float = 0.9
    """Fraction of each GPU's memory vLLM may use (0 < x <= 0.98)."""
    enable_prefix_caching: bool = True
    """vLLM's automatic prefix caching (the router's cache model assumes it)."""
    kv_events: bool = True
    """Publish the engine's KV-cache events for the router (vLLM's `--kv-events-config`: ZMQ PUB
    on `contracts.kv_events.KV_EVENTS_PORT`, replay on `KV_REPLAY_PORT`, topic naming the pod IP,
    port and served model; LMCache's CPU-tier stores republished on the same stream). Every
    engine renders `--block-size` and `--prefix-caching-hash-algo` from `contracts.kv_events`."""
    extra_args: tuple[str, ...] = ()
    """More vLLM flags; flags the component manages are refused."""
    lmcache: LMCacheArgs | None = field(default_factory=LMCacheArgs)
    """LMCache tiers (and the LMCacheConnectorV1 KV connector); None runs plain vLLM."""
    lora: LoraArgs | None = None
    """LoRA adapters loaded at start (`--enable-lora`, `--lora-modules`), fetched into
    `model_cache` by init containers (`stack_components.lora`); None: no LoRA. Refused with
    `lmcache` (LMCache keys KV without the adapter) and, for S3 sources, without `model_store`."""
    hf_token: SecretRef | None = None
    """Hugging Face token Secret, exposed as HF_TOKEN; None for public models."""
    placement: Placement = GPU_PLACEMENT
    """Node selector and tolerations of the GPU pool."""
    model_cache: ModelCacheVolume = field(default_factory=ModelCacheVolume)
    """Volume holding downloaded weights (HF_HOME)."""
    model_store: ModelStore | None = None
    """Copy the weights from S3 into `model_cache` (an init container, as a ServiceAccount with a
    read-only role) and load that directory; None downloads from the Hugging Face hub."""
    shm_size_gib: int = 16
    """RAM-backed /dev/shm (NCCL needs it with tensor parallelism); counts toward memory."""
    cpu: float = 8.0
    """CPU cores requested (and limited) per pod."""
    memory_gib: int | None = None
    """Pod memory; None: its processes' (`host_memory.process_memory_gib`: 6 GiB + 5 GiB per TP
    rank) + the LMCache CPU buffers (one per TP rank) + /dev/shm; at least that much."""
    startup_timeout_s: int = 1800
    """How long the startup probe allows for downloading and loading the model."""
    load_time_s: int = 300
    """Expected seconds from pod start to ready (weights download and load); sizes Pulumi's await
    of a rolling update (`LLMStack`'s program fills it from the model's `loadTimeSeconds`)."""
    drain_timeout_s: int | None = None
    """Seconds an engine keeps serving its in-flight requests after SIGTERM (vLLM's
    `--shutdown-timeout`; vLLM's default 0 aborts them); None: the longest request it allows,
    `drain.longest_request_s(max_model_len)`. The pod's grace period adds the teardown."""
    rollout_max_replicas: int | None = None
    """Most engines a rolling update may have to replace (the autoscaler's maxReplicas); None:
    `replicas`. Sizes Pulumi's await."""
    rollout_max_unavailable_percent: int = 25
    """Share of the engines a rolling update replaces at once (rounded down, at least one; no
    surge pod: GPUs are scarce)."""
    max_unavailable: int = 1
    """PodDisruptionBudget maxUnavailable."""
    python_hash_seed: int = 0
    """PYTHONHASHSEED, pinned so prefix hashes agree across restarts and replicas."""
    run_as_user: int | None = 10001
    """Non-root uid for the pod; None keeps the image's user (root in LMCache's image). The uid
    has no passwd entry in the image, so the container sets USER/LOGNAME (what
    `getpass.getuser()` reads before the passwd database, e.g. torch's compile caches) and
    HOME=/tmp (a writable emptyDir) for the Hugging Face, Triton and vLLM caches."""
    activation_reserve_gb: float = DEFAULT_ACTIVATION_RESERVE_GB
    """GPU memory per GPU kept for activations when computing the KV capacity."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on every object."""
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    """Extra pod annotations."""

    def __post_init__(self) -> None:
        v.non_empty("model", self.model)
        v.non_empty("revision", self.revision)
        v.require(
            self.served_model_name is None or bool(self.served_model_name.strip()),
            "served_model_name",
            self.served_model_name,
            "must be non-empty or None",
        )
        v.dns_label("namespace", self.namespace)
        v.non_empty("image", self.image)
        v.strings("command", self.command)
        v.int_in("replicas", self.replicas, 0, 1000)
        v.one_of("tensor_parallel_size", self.tensor_parallel_size, (1, 2, 4, 8))
        v.int_in("max_model_len", self.max_model_len, 16, 10_000_000)
        v.require(
            isinstance(self.gpu_memory_utilization, float | int) and 0 < self.gpu_memory_utilization <= 0.98,
            "gpu_memory_utilization",
            self.gpu_memory_utilization,
            "must be in (0, 0.98]",
        )
        check_extra_args(self.extra_args)
        self._check_lora()
        self._check_sizes()
        self.spec()  # fail on an unknown model or GPU now, not at deploy
        self.gpu_spec()

    def _check_lora(self) -> None:
        if self.lora is None:
            return
        v.require(isinstance(self.lora, LoraArgs), "lora", self.lora, "must be a LoraArgs or None")
        v.require(self.lmcache is None, "lora", self.lora.names(),
                  "cannot be combined with lmcache: LMCache 0.5.6 keys its KV chunks without the "
                  "adapter, so one adapter would reuse another's KV (set lmcache=None)")
        served = self.served_name
        v.require(served not in self.lora.names(), "lora.adapters", served,
                  "must not reuse the served model name (vLLM refuses such an adapter)")
        check_s3_sources(self.lora, self.model_store)

    def _check_sizes(self) -> None:
        v.int_in("shm_size_gib", self.shm_size_gib, 1, 1024)
        v.positive("cpu", self.cpu)
        v.int_in("startup_timeout_s", self.startup_timeout_s, 60, 4 * 3600)
        v.int_in("load_time_s", self.load_time_s, 1, self.startup_timeout_s)
        if self.drain_timeout_s is not None:
            v.int_in("drain_timeout_s", self.drain_timeout_s, 0, 24 * 3600)
        if self.rollout_max_replicas is not None:
            v.int_in("rollout_max_replicas", self.rollout_max_replicas, max(1, self.replicas), 1000)
        v.int_in("rollout_max_unavailable_percent", self.rollout_max_unavailable_percent, 1, 100)
        v.int_in("max_unavailable", self.max_unavailable, 0, 1000)
        v.int_in("python_hash_seed", self.python_hash_seed, 0, 4_294_967_295)
        v.require(
            self.run_as_user is None or (isinstance(self.run_as_user, int) and self.run_as_user > 0),
            "run_as_user",
            self.run_as_user,
            "must be a non-root uid (> 0) or None",
        )
        v.non_negative("activation_reserve_gb", self.activation_reserve_gb)
        v.labels("labels", self.labels)
        if self.memory_gib is not None:
            floor = self.shm_size_gib + self._buffer_gib() + process_memory_gib(self.tensor_parallel_size)
            v.int_in("memory_gib", self.memory_gib, floor, 1 << 20)

    def _buffer_gib(self) -> int:
        """Host memory of the LMCache CPU tier: one buffer per tensor-parallel rank."""
        per_rank = self.lmcache.cpu_buffer_gib if self.lmcache else 0.0
        return math.ceil(per_rank * self.tensor_parallel_size)

    @property
    def served_name(self) -> str:
        """The name clients request."""
        return self.served_model_name or self.model

    @property
    def drain_s(self) -> int:
        """vLLM's `--shutdown-timeout`: `drain_timeout_s`, else the longest request allowed."""
        return longest_request_s(self.max_model_len) if self.drain_timeout_s is None else self.drain_timeout_s

    @property
    def termination_grace_s(self) -> int:
        """The pod's terminationGracePeriodSeconds: the drain, then vLLM's teardown."""
        return engine_grace_s(self.drain_s)

    @property
    def await_timeout_s(self) -> int:
        """How long `pulumi up` waits for the Deployment: a rolling update of the most engines it
        may replace, each step draining and loading (`drain.rollout_await_s`)."""
        steps = rollout_steps(self.rollout_max_replicas or max(1, self.replicas),
                              self.rollout_max_unavailable_percent)
        return rollout_await_s(steps=steps, grace_s=self.termination_grace_s, load_time_s=self.load_time_s,
                               startup_timeout_s=self.startup_timeout_s)

    @property
    def pod_memory_gib(self) -> int:
        """Memory request/limit per pod: its processes (`host_memory`, from the TP size), the
        LMCache CPU buffers and /dev/shm, unless `memory_gib` says otherwise."""
        return self.memory_gib or (process_memory_gib(self.tensor_parallel_size) + self._buffer_gib()
                                   + self.shm_size_gib)

    def spec(self) -> ModelSpec:
        """The model's shape."""
        return self.model_spec or find_model(self.model)

    def gpu_spec(self) -> GpuSpec:
        """The GPU's memory."""
        return self.gpu if isinstance(self.gpu, GpuSpec) else find_gpu(self.gpu)


@dataclass(frozen=True, kw_only=True)
class EngineCapacity:
    """One engine's KV-cache capacity in tokens (what the router may believe it caches)."""

    served_model_name: str
    """Model name the engine serves."""
    gpu_cache_tokens: int
    """Tokens in the GPU KV cache of one engine pod."""
    cpu_cache_tokens: int = 0
    """Tokens in its LMCache CPU buffer."""
    deadlines: Deadlines = field(default_factory=Deadlines)
    """How long the router waits on it (`stack_components.deadlines`)."""
    adapters: tuple[str, ...] = ()
    """The LoRA adapters it serves (clients send them as `model`; their parent is `served_model_name`)."""
    rollouts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Weighted rollouts over those adapters: stable name -> {version adapter: percent} (the router's)."""

    def __post_init__(self) -> None:
        v.non_empty("served_model_name", self.served_model_name)
        v.int_in("gpu_cache_tokens", self.gpu_cache_tokens, 1, 1 << 40)
        v.int_in("cpu_cache_tokens", self.cpu_cache_tokens, 0, 1 << 40)


def engine_capacity(args: VllmEngineArgs) -> EngineCapacity:
    """The engine's capacity from its model, GPU and settings; raises `CapacityError` when the
    weights do not fit or one `max_model_len` sequence does not fit the KV cache."""
    model = args.spec()
    gpu_tokens = gpu_cache_tokens(
        model,
        args.gpu_spec(),
        tensor_parallel_size=args.tensor_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization,
        activation_reserve_gb=args.activation_reserve_gb,
    )
    if gpu_tokens < args.max_model_len:
        raise CapacityError(
            f"max_model_len={args.max_model_len} does not fit the {gpu_tokens}-token KV "
            f"cache of '{args.model}' on {args.tensor_parallel_size} × {args.gpu_spec().name}; "
            "lower max_model_len or raise tensor_parallel_size"
        )
    per_rank = args.lmcache.cpu_buffer_gib if args.lmcache else 0.0
    return EngineCapacity(
        served_model_name=args.served_name,
        gpu_cache_tokens=gpu_tokens,
        cpu_cache_tokens=cpu_cache_tokens(model, per_rank, args.tensor_parallel_size),
        deadlines=engine_deadlines(params_billion=model.params_billion,
                                   tensor_parallel_size=args.tensor_parallel_size,
                                   max_model_len=args.max_model_len),
        adapters=args.lora.names() if args.lora else (),
        rollouts=args.lora.rollout_table() if args.lora else {},
    )


class VllmEngine(pulumi.ComponentResource):
    """One model on vLLM: Deployment + Service + PodDisruptionBudget (+ Secret / PVC when asked)."""

    service_url: pulumi.Output[str]
    """In-cluster base URL of the engine Service, e.g. http://llm-llama-8b.llm.svc.cluster.local:8000."""
    gpu_cache_tokens: pulumi.Output[int]
    """Tokens in one pod's GPU KV cache."""
    cpu_cache_tokens: pulumi.Output[int]
    """Tokens in one pod's LMCache CPU buffer."""
    served_model_name: pulumi.Output[str]
    """Model name clients request."""
    deployment_name: pulumi.Output[str]
    """Name of the engine Deployment (an autoscaler's scale target)."""
    capacity: EngineCapacity
    """The same capacity as plain values, for wiring other components without Outputs."""
    object_name: str
    """Name shared by the Deployment, Service and PDB (known before deploy)."""
    namespace: str
    """Namespace of the engine's objects."""
    selector: dict[str, str]
    """Labels selecting this engine's pods (for monitors and autoscalers)."""

    def __init__(self, name: str, args: VllmEngineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmstack:components:VllmEngine", name, None, opts)
        self.capacity = engine_capacity(args)
        object_base = self.object_name = object_name(name)
        self.namespace = args.namespace
        self.selector = selector_labels(ROLE_ENGINE, object_base, args.served_name)
        child = child_opts(self, opts)
        scaled = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(ignore_changes=["spec.replicas"]))
        manifests = build_engine_manifests(object_base, args, self.capacity)
        created = {
            kind: create(
                f"{name}-{kind}",
                m,
                scaled if kind == "deployment" and args.replicas_managed_externally else child,
            )
            for kind, m in manifests.items()
        }
        host = service_host(object_base, args.namespace)
        self.deployment_name = created["deployment"].metadata.apply(lambda _: object_base)
        self.service_url = created["service"].metadata.apply(lambda _: f"http://{host}:{ENGINE_PORT}")
        self.gpu_cache_tokens = pulumi.Output.from_input(self.capacity.gpu_cache_tokens)
        self.cpu_cache_tokens = pulumi.Output.from_input(self.capacity.cpu_cache_tokens)
        self.served_model_name = pulumi.Output.from_input(self.capacity.served_model_name)
        self.register_outputs(
            {
                "service_url": self.service_url,
                "gpu_cache_tokens": self.gpu_cache_tokens,
                "cpu_cache_tokens": self.cpu_cache_tokens,
                "served_model_name": self.served_model_name,
                "deployment_name": self.deployment_name,
            }
        )
