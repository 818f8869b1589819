"""KV-cache capacity arithmetic (pure): how many tokens an engine's GPU tier and LMCache CPU
tier hold, from the model's shape and the GPU's memory. DESIGN.md's reference figures:
Llama-3.1-8B (bf16) on one A100-80GB at 0.9 utilisation holds ~400k tokens; a 120 GB LMCache
CPU buffer holds ~920k. GPU memory figures use decimal GB (10^9 bytes), as the design does;
LMCache buffers are GiB (LMCache multiplies its sizes by 1024³), one per tensor-parallel rank.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack_components import _validate as v
from stack_components.errors import ArgsError, CapacityError

GB = 1_000_000_000
DEFAULT_ACTIVATION_RESERVE_GB = 4.0  # per GPU: activations, CUDA graphs, allocator slack


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """The shape of a decoder model, as far as KV-cache sizing needs it."""

    name: str
    """Catalogue key, e.g. "Llama-3.1-8B"; Hugging Face ids whose basename starts with it match."""
    num_layers: int
    """Transformer layers."""
    num_kv_heads: int
    """Key/value heads per layer (GQA)."""
    head_dim: int
    """Dimension of one attention head."""
    params_billion: float
    """Parameter count in billions."""
    dtype_bytes: int = 2
    """Bytes per weight and per KV element (2 for bf16/fp16)."""
    max_context: int = 131_072
    """Longest context the model supports (tokens)."""

    def __post_init__(self) -> None:
        v.non_empty("model_spec.name", self.name)
        for name in ("num_layers", "num_kv_heads", "head_dim", "max_context"):
            v.int_in(f"model_spec.{name}", getattr(self, name), 1, 10_000_000)
        v.positive("model_spec.params_billion", self.params_billion)
        v.one_of("model_spec.dtype_bytes", self.dtype_bytes, (1, 2, 4))


@dataclass(frozen=True, kw_only=True)
class GpuSpec:
    """One GPU model."""

    name: str
    """Catalogue key, e.g. "A100-80GB"."""
    memory_gb: float
    """Device memory in GB."""

    def __post_init__(self) -> None:
        v.non_empty("gpu_spec.name", self.name)
        v.positive("gpu_spec.memory_gb", self.memory_gb)


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(name="Llama-3.2-1B", num_layers=16, num_kv_heads=8, head_dim=64, params_billion=1.24),
        ModelSpec(name="Llama-3.2-3B", num_layers=28, num_kv_heads=8, head_dim=128, params_billion=3.21),
        ModelSpec(name="Llama-3.1-8B", num_layers=32, num_kv_heads=8, head_dim=128, params_billion=8.03),
        ModelSpec(name="Llama-3.1-70B", num_layers=80, num_kv_heads=8, head_dim=128, params_billion=70.6),
        ModelSpec(
            name="Qwen2.5-7B",
            num_layers=28,
            num_kv_heads=4,
            head_dim=128,
            params_billion=7.62,
            max_context=32_768,
        ),
    )
}

GPUS: dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec(name="A100-40GB", memory_gb=40),
        GpuSpec(name="A100-80GB", memory_gb=80),
        GpuSpec(name="A10G-24GB", memory_gb=24),
        GpuSpec(name="L4-24GB", memory_gb=24),
        GpuSpec(name="H100-80GB", memory_gb=80),
    )
}


def find_model(model_id: str) -> ModelSpec:
    """The catalogue entry for a Hugging Face id ("meta-llama/Llama-3.1-8B-Instruct") or key."""
    base = model_id.rsplit("/", 1)[-1]
    for key in sorted(MODELS, key=len, reverse=True):
        if base == key or base.startswith(key + "-"):
            return MODELS[key]
    raise ArgsError(
        "model", model_id, f"is not in the model catalogue ({', '.join(MODELS)}); pass a ModelSpec for it"
    )


def find_gpu(name: str) -> GpuSpec:
    """The catalogue entry for a GPU name."""
    if name not in GPUS:
        raise ArgsError("gpu", name, f"must be one of {', '.join(GPUS)} (or a GpuSpec)")
    return GPUS[name]


def kv_bytes_per_token(model: ModelSpec) -> int:
    """K and V for every layer and KV head: layers × kv_heads × head_dim × 2 × dtype bytes."""
    return model.num_layers * model.num_kv_heads * model.head_dim * 2 * model.dtype_bytes


def weights_bytes(model: ModelSpec) -> int:
    """Weight memory: parameters × dtype bytes."""
    return round(model.params_billion * GB) * model.dtype_bytes


def gpu_cache_tokens(
    model: ModelSpec,
    gpu: GpuSpec,
    *,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    activation_reserve_gb: float = DEFAULT_ACTIVATION_RESERVE_GB,
) -> int:
    """Tokens of KV cache one engine holds on its GPUs:
    (memory × utilisation × TP − weights − reserve × TP) / KV bytes per token.
    Raises `CapacityError` when the weights and reserve leave no room."""
    budget = gpu.memory_gb * GB * gpu_memory_utilization * tensor_parallel_size
    reserve = activation_reserve_gb * GB * tensor_parallel_size
    free = budget - weights_bytes(model) - reserve
    if free <= 0:
        need = (weights_bytes(model) + reserve) / GB
        raise CapacityError(
            f"model '{model.name}' needs {need:.1f} GB for weights and activations but "
            f"{tensor_parallel_size} × {gpu.name} at gpu_memory_utilization={gpu_memory_utilization} "
            f"gives {budget / GB:.1f} GB; raise tensor_parallel_size or use a larger GPU"
        )
    return int(free // kv_bytes_per_token(model))


GIB = 1 << 30


def cpu_cache_tokens(model: ModelSpec, cpu_buffer_gib: float, tensor_parallel_size: int = 1) -> int:
    """Tokens of KV cache an engine's LMCache CPU tier holds: each of its `tensor_parallel_size`
    ranks keeps its own `cpu_buffer_gib` GiB of its shard of every token's KV, so the engine
    holds ranks × GiB × 1024³ / (full KV bytes per token)."""
    if cpu_buffer_gib < 0:
        raise ArgsError("cpu_buffer_gib", cpu_buffer_gib, "must be >= 0")
    return int(cpu_buffer_gib * GIB * tensor_parallel_size // kv_bytes_per_token(model))
