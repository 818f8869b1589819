"""Host memory of one engine pod's processes, from its tensor-parallel size.

A vLLM 0.33 pod runs an API server process, an engine-core process (the scheduler) and one GPU
worker per tensor-parallel rank (`vllm/v1/executor/multiproc_executor.py` starts a worker per
rank; TP-1 runs its one worker in a process of its own too). Each imports torch and vLLM: about
1.0 GiB resident each at import alone (measured on CPU with the engine image's versions in
`.venv-engine`: `vllm.entrypoints.openai.api_server` 1010 MiB, `vllm.v1.engine.core` 999 MiB,
`vllm.v1.worker.gpu_worker` 1137 MiB max RSS). On top, believed, not measured here (no GPU):
the API server's tokenizer and detokenizer and request buffers, the engine core's scheduler
state and IPC buffers, and in each worker the CUDA context, cuBLAS/cuDNN/NCCL libraries and
pinned staging buffers. The LMCache CPU tier and /dev/shm are sized separately.
"""

from __future__ import annotations

API_SERVER_GIB = 3
"""The API server process: ~1 GiB at import, tokenizer, detokenizer, request buffers."""
ENGINE_CORE_GIB = 3
"""The engine-core process: ~1 GiB at import, scheduler and IPC buffers."""
WORKER_GIB = 5
"""One GPU worker: ~1.1 GiB at import, CUDA context and libraries, pinned staging buffers."""


def process_memory_gib(tensor_parallel_size: int) -> int:
    """The processes of a TP-`tensor_parallel_size` engine pod: 11 GiB at TP-1, 26 at TP-4, 46 at TP-8."""
    return API_SERVER_GIB + ENGINE_CORE_GIB + WORKER_GIB * tensor_parallel_size
