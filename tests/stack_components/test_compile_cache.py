"""The engines' compile-cache directory: under the model cache, one per model, revision and vLLM version."""

from __future__ import annotations

from stack_components.compile_cache import compile_cache_dir, compile_cache_env
from stack_components.engine import VllmEngineArgs
from stack_components.engine_manifests import build_container
from stack_components.versions import VLLM_VERSION


def test_one_directory_per_model_revision_and_vllm_version():
    """Another model, revision or vLLM version gets another directory; all under the mount."""
    base = compile_cache_dir("/models", "meta-llama/Llama-3.1-8B-Instruct", "abc")
    others = {compile_cache_dir("/models", "meta-llama/Llama-3.1-70B-Instruct", "abc"),
              compile_cache_dir("/models", "meta-llama/Llama-3.1-8B-Instruct", "def"),
              compile_cache_dir("/models", "meta-llama/Llama-3.1-8B-Instruct", "abc", vllm_version="0.34.0")}
    assert base == f"/models/compile/meta-llama/Llama-3.1-8B-Instruct/abc/vllm-{VLLM_VERSION}"
    assert base not in others and len(others) == 3
    assert all(p.startswith("/models/compile/") for p in others)


def test_every_compiler_cache_variable_points_under_the_root():
    """vLLM's, inductor's, Triton's and FlashInfer's variables, each in its own subdirectory."""
    root = "/models/compile/m/r/vllm-x"
    env = compile_cache_env(root)
    assert set(env) == {"VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR",
                        "FLASHINFER_WORKSPACE_BASE"}
    assert len(set(env.values())) == 4 and all(v.startswith(f"{root}/") for v in env.values())


def test_the_engine_container_carries_them():
    """The rendered vLLM container's env holds the variables, under its model-cache mount."""
    args = VllmEngineArgs(model="meta-llama/Llama-3.1-8B-Instruct", revision="abc")
    container = build_container(args)
    env = {e["name"]: e.get("value") for e in container["env"]}
    (mount,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "model-cache"]
    root = compile_cache_dir(mount, args.model, "abc")
    assert {k: env[k] for k in compile_cache_env(root)} == compile_cache_env(root)
