"""Timing knobs of an emulated engine, calibrated to DESIGN.md's A100-80GB / Llama-3.1-8B figures.

One scheduler step (continuous batching, chunked prefill) lasts

    time_scale * (step_base_s
                  + step_seq_s * sequences in the step
                  + prefill_token_s * prefill tokens computed in the step
                  + kv_read_token_s * context tokens of the decoding sequences
                  + CPU-tier tokens loaded in the step / cpu_load_tokens_per_s)

Defaults: a cold 20k-token prompt (three 8,192-token chunks) takes ~2.54 s; 200 new tokens on
a cached prefix ~37 ms; a decode step of one sequence with a 21k-token context ~13.4 ms,
growing with the batch (32 such sequences: ~55 ms); LMCache CPU loads at 200k tokens/s.
`time_scale` multiplies every duration, so 0.1 runs ten times faster with the same ratios.
Pure: plain arithmetic over a frozen value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from emulator.errors import require


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Per-step cost model of one engine (seconds before `time_scale`)."""

    step_base_s: float = 0.012  # fixed cost of one forward pass (weights read from HBM)
    step_seq_s: float = 0.0001  # per sequence in the batch (sampling, bookkeeping)
    prefill_token_s: float = 125e-6  # per prompt token computed (~2.5 s for 20k tokens)
    kv_read_token_s: float = 6e-8  # per context token a decoding sequence reads (128 KiB / 2 TB/s)
    cpu_load_tokens_per_s: float = 200_000.0  # LMCache CPU tier -> GPU (PCIe gen4)
    time_scale: float = 1.0  # multiplies every duration

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            require(isinstance(value, int | float) and math.isfinite(value) and value >= 0,
                    f.name, value, "must be a finite number >= 0")
        require(self.cpu_load_tokens_per_s > 0, "cpu_load_tokens_per_s", self.cpu_load_tokens_per_s,
                "must be > 0")
        require(self.time_scale > 0, "time_scale", self.time_scale, "must be > 0")

    def step_seconds(self, *, seqs: int, prefill_tokens: int, context_tokens: int,
                     loaded_tokens: int) -> float:
        """Duration of one step (already multiplied by `time_scale`)."""
        raw = (
            self.step_base_s
            + self.step_seq_s * seqs
            + self.prefill_token_s * prefill_tokens
            + self.kv_read_token_s * context_tokens
            + loaded_tokens / self.cpu_load_tokens_per_s
        )
        return raw * self.time_scale

    def cold_prefill_seconds(self, tokens: int, chunk_tokens: int) -> float:
        """Time to prefill `tokens` uncached tokens alone in chunks of `chunk_tokens`."""
        steps = max(1, -(-tokens // chunk_tokens))
        per_step = (self.step_base_s + self.step_seq_s) * self.time_scale
        return steps * per_step + self.prefill_token_s * tokens * self.time_scale

    def decode_step_seconds(self, batch: int, context_tokens_each: int) -> float:
        """One decode step of `batch` sequences, each reading `context_tokens_each` of context."""
        return self.step_seconds(seqs=batch, prefill_tokens=0,
                                 context_tokens=batch * context_tokens_each, loaded_tokens=0)
