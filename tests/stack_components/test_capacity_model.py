"""KV-cache capacity arithmetic against DESIGN.md's reference figures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack_components.capacity import (
    GPUS,
    MODELS,
    cpu_cache_tokens,
    find_gpu,
    find_model,
    gpu_cache_tokens,
    kv_bytes_per_token,
    weights_bytes,
)
from stack_components.errors import ArgsError, CapacityError

LLAMA_8B = MODELS["Llama-3.1-8B"]
A100_80 = GPUS["A100-80GB"]


def test_kv_bytes_per_token_llama_8b_is_128_kib() -> None:
    """32 layers × 8 KV heads × 128 dims × 2 (K,V) × 2 bytes = 128 KiB per token."""
    assert kv_bytes_per_token(LLAMA_8B) == 128 * 1024


def test_llama_8b_weights_are_about_16_gb() -> None:
    """8.03 B parameters in bf16 take ~16 GB."""
    assert 15.9e9 < weights_bytes(LLAMA_8B) < 16.2e9


def test_llama_8b_on_a100_80gb_holds_about_400k_tokens() -> None:
    """(80 × 0.9 − 16 − 4) GB / 128 KiB ≈ 400k tokens, as DESIGN.md says."""
    tokens = gpu_cache_tokens(LLAMA_8B, A100_80, tensor_parallel_size=1, gpu_memory_utilization=0.9)
    assert 380_000 <= tokens <= 420_000


def test_112_gib_lmcache_buffer_holds_about_920k_tokens() -> None:
    """112 GiB (≈ 120 GB) / 128 KiB ≈ 917k tokens, as DESIGN.md says for 120 GB."""
    assert 900_000 <= cpu_cache_tokens(LLAMA_8B, 112) <= 940_000


def test_lmcache_tokens_count_one_buffer_per_tensor_parallel_rank() -> None:
    """Each TP rank holds its own buffer of its KV shard: 4 ranks × 30 GiB hold what one 120 GiB
    buffer holds, i.e. 4× one rank's 30 GiB (the router's capacity follows the TP factor)."""
    model = MODELS["Llama-3.1-70B"]
    assert cpu_cache_tokens(model, 30, 4) == cpu_cache_tokens(model, 120, 1)
    assert cpu_cache_tokens(model, 30, 4) == 4 * cpu_cache_tokens(model, 30, 1)


def test_llama_70b_does_not_fit_one_a100_80gb() -> None:
    """141 GB of weights on one 80 GB GPU raises a CapacityError naming the fix."""
    with pytest.raises(CapacityError, match="tensor_parallel_size"):
        gpu_cache_tokens(MODELS["Llama-3.1-70B"], A100_80, tensor_parallel_size=1)


def test_llama_70b_fits_four_a100_80gb() -> None:
    """With TP=4 the 70B model leaves a six-figure token KV cache."""
    tokens = gpu_cache_tokens(MODELS["Llama-3.1-70B"], A100_80, tensor_parallel_size=4)
    assert 300_000 < tokens < 500_000


def test_find_model_matches_hugging_face_ids() -> None:
    """An HF id whose basename starts with a catalogue key finds that entry (longest key wins)."""
    assert find_model("meta-llama/Llama-3.1-8B-Instruct") is LLAMA_8B
    assert find_model("meta-llama/Llama-3.1-70B-Instruct").name == "Llama-3.1-70B"
    assert find_model("Qwen/Qwen2.5-7B-Instruct").name == "Qwen2.5-7B"


def test_unknown_model_and_gpu_are_argument_errors() -> None:
    """Unknown names raise ArgsError listing the catalogue."""
    with pytest.raises(ArgsError, match="Llama-3.1-8B"):
        find_model("mistralai/Mistral-7B")
    with pytest.raises(ArgsError, match="A100-80GB"):
        find_gpu("V100")


def test_negative_cpu_buffer_is_rejected() -> None:
    """A negative LMCache buffer is an argument error."""
    with pytest.raises(ArgsError, match="cpu_buffer_gib"):
        cpu_cache_tokens(LLAMA_8B, -1)


@given(util=st.floats(0.5, 0.95), more=st.floats(0.0, 0.03), tp=st.sampled_from([1, 2, 4, 8]))
def test_capacity_grows_with_utilisation_and_tensor_parallelism(util: float, more: float, tp: int) -> None:
    """More memory fraction or more GPUs never shrinks the KV cache."""
    base = gpu_cache_tokens(LLAMA_8B, A100_80, tensor_parallel_size=tp, gpu_memory_utilization=util)
    assert (
        gpu_cache_tokens(LLAMA_8B, A100_80, tensor_parallel_size=tp, gpu_memory_utilization=util + more)
        >= base
    )
    if tp < 8:
        assert (
            gpu_cache_tokens(LLAMA_8B, A100_80, tensor_parallel_size=tp * 2, gpu_memory_utilization=util)
            > base
        )
