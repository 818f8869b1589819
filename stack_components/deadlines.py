"""The router's per-model deadlines (pure): how long it waits on an engine for a request's
first byte, for each next chunk of a stream, and for the whole answer, from the model's
expected prefill time on its GPUs (issue 18, defect 5).

- The longest prefill an engine may run is one `max_model_len` prompt, cold. The rate scales
  from DESIGN.md's reference (8,000 tokens/s for an 8B model on one A100, the figure
  `stack_components.drain` uses) by 8 / parameters (billions) × tensor-parallel size (believed:
  prefill is compute-bound, linear in parameters, and tensor parallelism splits it; not measured
  on a GPU here).
- First byte: a request may queue behind a few such prefills before its own: 30 s + 4 ×
  the longest prefill.
- Between chunks: a running sequence can be preempted and recomputed (its whole context
  prefilled again) while others' prefill chunks run: 10 s + 2 × the longest prefill.
- Whole answer: the first byte, then the longest request the engine allows
  (`drain.longest_request_s`, a full `max_model_len` sequence at the slowest decode rate).

Figures: Llama-3.1-8B, TP 1, 32,768 tokens: 47 s / 19 s / 47 s + 1,315 s; Llama-3.1-70B,
TP 4, 65,536 tokens: 103 s / 47 s / 103 s + 2,630 s.
"""

from __future__ import annotations

import math

from router.settings import Deadlines
from stack_components.drain import PREFILL_TOKENS_PER_S, longest_request_s

REFERENCE_PARAMS_BILLION = 8.0
"""The model size `PREFILL_TOKENS_PER_S` was quoted for."""


def prefill_s(*, params_billion: float, tensor_parallel_size: int, tokens: int) -> float:
    """Seconds to prefill `tokens` cold on one engine (believed rate, see the module docstring)."""
    rate = PREFILL_TOKENS_PER_S * REFERENCE_PARAMS_BILLION / params_billion * tensor_parallel_size
    return tokens / rate


def engine_deadlines(*, params_billion: float, tensor_parallel_size: int, max_model_len: int) -> Deadlines:
    """The deadlines the router applies to requests for one model."""
    longest = prefill_s(params_billion=params_billion, tensor_parallel_size=tensor_parallel_size,
                        tokens=max_model_len)
    first = math.ceil(30 + 4 * longest)
    return Deadlines(first_byte_s=first, inter_chunk_s=math.ceil(10 + 2 * longest),
                     whole_s=first + longest_request_s(max_model_len))
