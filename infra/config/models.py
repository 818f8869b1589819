"""`llm-stack:models`: the served models keyed by name; each becomes one `VllmEngine`.

```yaml
llm-stack:models:
  llama8b:
    modelId: meta-llama/Llama-3.1-8B-Instruct
    revision: 0e9e39f249a16976918f6564b8830bc894c89659
    nodePool: a100
    replicas: 2
    minReplicas: 1
    maxReplicas: 8
    tensorParallelSize: 1
    maxModelLen: 32768
    # LoRA adapters served on these engines (clients send the key as `model`); LMCache must be
    # off for them (lmcache: false here, or llm-stack:lmcache.enabled: false): LMCache keys KV
    # without the adapter
    lmcache: false
    adapters:
      sql: {source: "hf://acme/llama-sql-lora@<40-hex commit>", rank: 16}
      # baseModel: meta-llama/Meta-Llama-3.1-8B-Instruct  # only when its adapter_config.json
      #   names the base model by another name (checked by the engines before vLLM starts)
      # a weighted rollout: clients send `support`; the router sends 90 % of conversations to
      # version v3 and 10 % to v4 (served as adapters `support--v3`, `support--v4`)
      support:
        rank: 32
        versions:
          v3: {source: "s3://<modelStore bucket>/<modelStore prefix>/adapters/support/v3", weight: 90}
          v4: {source: "s3://<modelStore bucket>/<modelStore prefix>/adapters/support/v4", weight: 10}
    lora: {maxLoras: 2}   # GPU slots; optional, as maxCpuLoras and maxLoraRank
```

Retiring a version takes two `pulumi up`s: first its weight to 0 (the routers roll with the
new split, the old ones drain; the engines keep it loaded, so nothing sent to it fails), then
its removal from `versions` (the engines roll without it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from infra.errors import require
from stack_components.lora import version_name

_MODEL_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_SERVED = re.compile(r"^[A-Za-z0-9][\w.:/-]{0,127}$")


@dataclass(frozen=True, kw_only=True)
class AdapterVersionConfig:
    """One version of a rolled-out adapter (`models.<m>.adapters.<name>.versions.<version>`),
    served as the adapter `<name>--<version>` (`stack_components.lora.version_name`)."""

    source: str
    """As an adapter's `source`."""
    weight: int
    """Percent of new conversations naming the adapter that go to this version: whole numbers
    summing to 100 over the versions; 0 keeps the version loaded and sends it nothing new."""
    rank: int | None = None
    """This version's LoRA rank; None: the adapter's `rank`."""


@dataclass(frozen=True, kw_only=True)
class AdapterConfig:
    """One LoRA adapter of a model (`models.<m>.adapters.<name>`), checked by the engine component
    (`stack_components.lora.LoraAdapter`, `LoraRollout`): the key is the name clients send as
    `model`. Either one `source`, or `versions` split by weight (a rollout)."""

    source: str | None = None
    """`hf://<org>/<repo>@<revision>` (a 40-hex commit in prod) or `s3://<bucket>/<key prefix>`
    under `llm-stack:modelStore`'s bucket and prefix (the engines' read-only role reads it)."""
    rank: int | None = None
    """The adapter's LoRA rank (`r` in its adapter_config.json), at most the model's `lora.maxLoraRank`;
    with `versions`, the rank of those that set none."""
    versions: dict[str, AdapterVersionConfig] = field(default_factory=dict)
    """Versions by name, the router splitting new conversations over them by `weight` and keeping
    each conversation on its version (`router.routing.rollout`)."""
    base_model: str | None = None
    """The base model the adapter's `adapter_config.json` names (`base_model_name_or_path`) when
    that is another name of this model, e.g. a renamed repository; None: the model's `modelId`.
    The engine's `lora-check` init container compares them before vLLM starts."""

    def __post_init__(self) -> None:
        require((self.source is None) != (not self.versions), "source", self.source,
                "must be set, or versions instead (not both)")
        if self.source is not None:
            require(self.rank is not None, "rank", self.rank, "is required with source")
        for name, version in self.versions.items():
            require(version.rank is not None or self.rank is not None, f"versions.{name}.rank", None,
                    "is required (here, or as the adapter's rank)")
        alias = self.base_model
        require(alias is None or bool(_MODEL_ID.match(alias)), "baseModel", alias,
                "must be a Hugging Face id like org/name")

    def served(self, name: str) -> dict[str, tuple[str, str, int]]:
        """The adapters this entry loads, by served name: (config key under the adapter, source,
        rank): itself, or `<name>--<version>` per version."""
        if self.source is not None:
            return {name: ("", self.source, self.rank or 0)}
        return {version_name(name, v): (f"versions.{v}", spec.source, spec.rank or self.rank or 0)
                for v, spec in self.versions.items()}


@dataclass(frozen=True, kw_only=True)
class LoraSlotsConfig:
    """vLLM's LoRA slots for a model's engines (`models.<m>.lora`); used only with `adapters`."""

    max_loras: int | None = None
    """Adapters in one batch (GPU slots, vLLM's `--max-loras`); None: one per adapter, at most 4."""
    max_cpu_loras: int | None = None
    """Adapters kept in host memory (`--max-cpu-loras`, >= maxLoras); None: every adapter."""
    max_lora_rank: int | None = None
    """`--max-lora-rank` (1, 8, 16, 32, 64, 128, 256, 320 or 512); None: the smallest holding every rank."""


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """One served model: a Deployment of identical vLLM engines on one node pool."""

    model_id: str
    """Hugging Face repository id, e.g. `meta-llama/Llama-3.1-8B-Instruct`."""
    node_pool: str
    """Key of the GPU node pool in `llm-stack:nodePools` the engines run on."""
    revision: str = "main"
    """Repository revision; pin a commit hash in staging and prod."""
    served_name: str | None = None
    """Model name clients send (`model` in requests); defaults to the map key."""
    replicas: int = 1
    """Engines at deploy time."""
    min_replicas: int = 1
    """Fewest engines the autoscaler keeps."""
    max_replicas: int = 1
    """Most engines the autoscaler may run."""
    tensor_parallel_size: int = 1
    """GPUs per engine; must divide the node's GPU count."""
    max_model_len: int = 8192
    """Longest sequence (prompt + output) in tokens (bounds: `VllmEngineArgs`, and the GPUs)."""
    gpu_memory_utilization: float = 0.9
    """Share of each GPU's memory vLLM may use, in (0, 0.98] (checked by `VllmEngineArgs`)."""
    extra_args: tuple[str, ...] = ()
    """Further vLLM flags (`--enable-chunked-prefill`, ...); not the flags the component manages
    (checked by `VllmEngineArgs`), and each checked by vLLM's own parser (`engine_check`)."""
    image: str | None = None
    """vLLM + LMCache container image; None: the component's pinned default."""
    adapters: dict[str, AdapterConfig] = field(default_factory=dict)
    """LoRA adapters served on these engines, keyed by the name clients send (`stack_components.lora`)."""
    lora: LoraSlotsConfig = field(default_factory=LoraSlotsConfig)
    """vLLM's LoRA slots for the adapters."""
    lmcache: bool = True
    """Whether these engines use the stack's LMCache tiers (`llm-stack:lmcache`); false: vLLM's own
    prefix cache only, as a model with adapters needs while LMCache is on (LMCache 0.5.6 keys KV
    without the adapter)."""

    def __post_init__(self) -> None:
        require(bool(_MODEL_ID.match(self.model_id)), "modelId", self.model_id,
                "must be a Hugging Face id like org/name")
        require(bool(self.revision.strip()), "revision", self.revision, "must be a non-empty revision")
        if self.served_name is not None:
            require(bool(_SERVED.match(self.served_name)), "servedName", self.served_name,
                    "must be 1-128 letters, digits, '_', '.', ':', '/', '-'")
        require(self.min_replicas >= 0, "minReplicas", self.min_replicas, "must be >= 0")
        require(self.min_replicas <= self.replicas <= self.max_replicas, "replicas", self.replicas,
                f"must satisfy minReplicas ({self.min_replicas}) <= replicas <= maxReplicas "
                f"({self.max_replicas})")
        require(self.max_replicas >= 1, "maxReplicas", self.max_replicas, "must be >= 1")
        require(self.tensor_parallel_size >= 1, "tensorParallelSize", self.tensor_parallel_size,
                "must be >= 1 (the engine allows 1, 2, 4 or 8)")
        require(self.max_model_len >= 1, "maxModelLen", self.max_model_len, "must be >= 1")
        slots = self.lora
        given = {"maxLoras": slots.max_loras, "maxCpuLoras": slots.max_cpu_loras,
                 "maxLoraRank": slots.max_lora_rank}
        require(bool(self.adapters) or slots == LoraSlotsConfig(), "lora", given,
                "is used only with adapters: declare models.<m>.adapters, or remove lora")

    def served_adapters(self) -> list[tuple[str, str, str, int]]:
        """Every adapter the engines load, in order: (served name, its config key under the
        model, source, rank); a rolled-out adapter gives one per version."""
        return [(served, f"adapters.{adapter}" + (f".{sub}" if sub else ""), source, rank)
                for adapter, spec in self.adapters.items()
                for served, (sub, source, rank) in spec.served(adapter).items()]
