"""Settings of one emulated engine: one frozen value, validated once.

Defaults are DESIGN.md's A100-80GB / Llama-3.1-8B-Instruct figures: ~400k tokens of GPU KV
cache, no CPU tier (LMCache's 120 GB buffer is ~920k tokens: pass `cpu_cache_tokens`),
vLLM's scheduler limits (256 sequences, 8,192 batched tokens per step, 128k context).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.kv_events import KV_REPLAY_BUFFER_STEPS
from emulator.errors import require
from emulator.faults import Faults
from emulator.kv_wire import CpuStyle, Wire
from emulator.lora import LoraSettings
from emulator.timing import Timing
from router.routing.prompt import BLOCK_TOKENS

DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
_SCHEMES = ("tcp://", "ipc://")


@dataclass(frozen=True, kw_only=True)
class KvEventsSettings:
    """How an engine publishes its KV events, as vLLM's `--kv-events-config` says it
    (`emulator.kv_publisher`). A tcp endpoint with port 0 binds a free port."""

    endpoint: str = "tcp://127.0.0.1:0"
    replay_endpoint: str | None = "tcp://127.0.0.1:0"
    """The replay ROUTER socket; None: no replay (vLLM's default)."""
    topic: str | None = None
    """None: `contracts.kv_events.topic(host, http port, model)`, as our engines are rendered."""
    wire: Wire = Wire.MAP
    int_hashes: bool = False
    cpu_style: CpuStyle = CpuStyle.VLLM
    buffer_steps: int = KV_REPLAY_BUFFER_STEPS
    hwm: int = 100_000

    def __post_init__(self) -> None:
        for name in ("endpoint", "replay_endpoint"):
            value = getattr(self, name)
            require((value is None and name == "replay_endpoint")
                    or (isinstance(value, str) and value.startswith(_SCHEMES) and len(value) > 6),
                    f"kv_events.{name}", value, "must be a tcp://HOST:PORT or ipc://PATH endpoint")
        require(self.buffer_steps >= 1, "kv_events.buffer_steps", self.buffer_steps, "must be >= 1")
        require(self.hwm >= 1, "kv_events.hwm", self.hwm, "must be >= 1")


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """Everything one emulated engine needs besides its port."""

    model: str = DEFAULT_MODEL
    gpu_cache_tokens: int = 400_000
    cpu_cache_tokens: int = 0
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    max_model_len: int = 131_072
    default_max_tokens: int = 256  # when a request sets neither max_tokens nor max_completion_tokens
    stop_after_tokens: int | None = None  # emit EOS after this many tokens unless ignore_eos; None: never
    embedding_dim: int = 32
    journal_size: int = 10_000  # recent requests kept for GET /emulator/requests
    seed: int = 0  # seeds the fault draws
    shutdown_timeout_s: int = 0
    """vLLM 0.33's `--shutdown-timeout` on SIGTERM: 0 aborts every request at once; N > 0 keeps
    serving open requests up to N s (refusing new ones) before aborting the rest."""
    created: int | None = None
    """The `created` field of every answer; None: the wall clock's second (tests pin it to
    compare two answers byte for byte)."""
    timing: Timing = field(default_factory=Timing)
    faults: Faults = field(default_factory=Faults)
    kv_events: KvEventsSettings | None = None
    """Publish KV events (None: off, as vLLM without `--kv-events-config`)."""
    lora: LoraSettings | None = None
    """Serve LoRA adapters (None: off, as vLLM without `--enable-lora`; `emulator.lora`)."""

    def __post_init__(self) -> None:
        require(bool(self.model) and self.model.strip() == self.model, "model", self.model,
                "must be a non-empty name without surrounding spaces")
        require(self.gpu_cache_tokens >= BLOCK_TOKENS * 2, "gpu_cache_tokens", self.gpu_cache_tokens,
                f"must be >= {BLOCK_TOKENS * 2}")
        require(self.cpu_cache_tokens >= 0, "cpu_cache_tokens", self.cpu_cache_tokens, "must be >= 0")
        require(self.max_num_seqs >= 1, "max_num_seqs", self.max_num_seqs, "must be >= 1")
        require(self.max_num_batched_tokens > self.max_num_seqs, "max_num_batched_tokens",
                self.max_num_batched_tokens, f"must exceed max_num_seqs ({self.max_num_seqs})")
        require(self.max_model_len >= 2, "max_model_len", self.max_model_len, "must be >= 2")
        require(self.default_max_tokens >= 1, "default_max_tokens", self.default_max_tokens, "must be >= 1")
        require(self.stop_after_tokens is None or self.stop_after_tokens >= 1, "stop_after_tokens",
                self.stop_after_tokens, "must be None or >= 1")
        require(1 <= self.embedding_dim <= 8192, "embedding_dim", self.embedding_dim, "must be in 1..8192")
        require(self.journal_size >= 1, "journal_size", self.journal_size, "must be >= 1")
        require(isinstance(self.shutdown_timeout_s, int) and self.shutdown_timeout_s >= 0,
                "shutdown_timeout_s", self.shutdown_timeout_s, "must be an integer >= 0")
        require(self.lora is None or all(m.name != self.model for m in self.lora.modules), "lora_modules",
                self.model, "must not name an adapter after the served base model")

    @property
    def context_limit(self) -> int:
        """Longest prompt + output accepted: the model's context, bounded by the GPU KV cache."""
        return min(self.max_model_len, self.gpu_cache_tokens // BLOCK_TOKENS * BLOCK_TOKENS)
