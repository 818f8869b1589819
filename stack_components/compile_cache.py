"""Where an engine keeps what it compiles, so a restarted pod on the same node does not
compile again: a directory per model, revision and vLLM version under the model cache (the
node's hostPath where the stack gives one, else the model cache's own volume).

What vLLM 0.33 and its libraries read (at `versions.VLLM_VERSION`):
- `VLLM_CACHE_ROOT` (`vllm/envs.py`, default `~/.cache/vllm`): vLLM's `torch.compile` cache,
  `<root>/torch_compile_cache/<hash>` (`vllm/compilation/backends.py`), with inductor's and
  Triton's output beside it: `initialize_inductor_cache` (`vllm/compilation/compiler_interface.py`)
  points `TORCHINDUCTOR_CACHE_DIR` at `<hash>/inductor_cache` and, unless the caller set
  `TRITON_CACHE_DIR`, Triton's at `<hash>/triton_cache`;
- `TORCHINDUCTOR_CACHE_DIR` (`torch/_inductor/runtime/cache_dir_utils.py`, default
  `/tmp/torchinductor_<user>`): inductor's cache for anything compiled outside vLLM's backend;
- `TRITON_CACHE_DIR` (`triton/knobs.py`, default `~/.triton/cache`): Triton kernels JIT-compiled
  outside `torch.compile` (vLLM's own Triton ops); set, so every Triton kernel of the engine
  lands in one directory that survives restarts;
- `FLASHINFER_WORKSPACE_BASE` (`flashinfer/jit/env.py`, default the home directory): FlashInfer's
  JIT-built ops and downloaded cubins under `<base>/.cache/flashinfer`.
vLLM's hash covers the model config and its own source, so a shared directory would be safe;
one per model and version keeps each removable on its own (`rm -r <mount>/compile/<model>`).
"""

from __future__ import annotations

import posixpath

from stack_components.versions import VLLM_VERSION

SUBDIR = "compile"


def compile_cache_dir(mount_path: str, model: str, revision: str | None,
                      vllm_version: str = VLLM_VERSION) -> str:
    """`<mount>/compile/<model id>/<revision>/vllm-<version>` (`unpinned` without a revision)."""
    return posixpath.join(mount_path, SUBDIR, model, revision or "unpinned", f"vllm-{vllm_version}")


def compile_cache_env(root: str) -> dict[str, str]:
    """The variables that put vLLM's, inductor's, Triton's and FlashInfer's caches under `root`."""
    return {
        "VLLM_CACHE_ROOT": posixpath.join(root, "vllm"),
        "TORCHINDUCTOR_CACHE_DIR": posixpath.join(root, "inductor"),
        "TRITON_CACHE_DIR": posixpath.join(root, "triton"),
        "FLASHINFER_WORKSPACE_BASE": posixpath.join(root, "flashinfer"),
    }
