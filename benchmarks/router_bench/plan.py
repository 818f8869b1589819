"""What one benchmark run does, as frozen values: the load scenarios, request counts,
repeats and the memory checkpoints. Pure and validated; `run.py` executes it."""

from __future__ import annotations

from dataclasses import dataclass, field

from local.procs import BenchError


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise BenchError(f"router benchmark '{name}' {allowed} (got {value!r})")


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One fixed-count load: `n` requests over `c` connections, streamed or not."""

    name: str
    n: int
    c: int
    stream: bool = False

    def __post_init__(self) -> None:
        _require(self.n > 0, f"{self.name}.n", self.n, "must be > 0")
        _require(0 < self.c <= self.n, f"{self.name}.c", self.c, f"must be in 1..n={self.n}")


LATENCY = "c1"  # the added-latency scenario (concurrency 1, not streamed)
PLAIN = "c16"  # CPU per request and throughput (concurrency 16, not streamed)
STREAM = "c16-stream"  # CPU per streamed token (concurrency 16, streamed)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The whole run. Defaults are the recorded configuration; `quick()` a smoke-sized one."""

    engines: int = 4
    repeats: int = 3
    warmup: int = 300
    max_tokens: int = 64
    prompt_bytes: int = 8192
    conversations: int = 64
    token_gap_ms: float = 1.0
    gpu_cache_tokens: int = 400_000  # per engine (DESIGN.md, A100-80GB at 0.9 utilisation)
    cpu_cache_tokens: int = 920_000  # per engine (DESIGN.md, LMCache 120 GB CPU buffer)
    scenarios: tuple[Scenario, ...] = (
        Scenario(name=LATENCY, n=2000, c=1),
        Scenario(name=PLAIN, n=4000, c=16),
        Scenario(name=STREAM, n=480, c=16, stream=True),
    )
    memory_checkpoints: tuple[int, ...] = (2_000, 10_000, 30_000)
    memory_concurrency: int = 16
    memory_timeout_s: float = 900.0  # per checkpoint, at least (see `memory_timeout_for`)
    memory_min_rate: float = 250.0  # prompts/s a checkpoint may not fall below: 900k take <= 1 h
    ready_deadline_s: float = 60.0
    loadgen_timeout_s: float = 300.0
    names: tuple[str, ...] = field(default_factory=tuple)  # only these routers (empty: all)

    def __post_init__(self) -> None:
        _require(self.engines >= 2, "engines", self.engines, "must be >= 2 (routing needs a choice)")
        _require(self.repeats >= 1, "repeats", self.repeats, "must be >= 1")
        _require(self.max_tokens > 0, "max_tokens", self.max_tokens, "must be > 0")
        _require(self.prompt_bytes >= 256, "prompt_bytes", self.prompt_bytes, "must be >= 256")
        names = [s.name for s in self.scenarios]
        _require({LATENCY, PLAIN, STREAM} <= set(names), "scenarios", names,
                 f"must include {LATENCY}, {PLAIN} and {STREAM}")
        checkpoints = list(self.memory_checkpoints)
        _require(checkpoints == sorted(set(checkpoints)) and all(n > 0 for n in checkpoints),
                 "memory_checkpoints", checkpoints, "must be increasing positive counts")

    def memory_timeout_for(self, prompts: int) -> float:
        """Seconds allowed for a memory checkpoint of `prompts` distinct prompts."""
        return max(self.memory_timeout_s, prompts / self.memory_min_rate)

    def scenario(self, name: str) -> Scenario:
        return next(s for s in self.scenarios if s.name == name)

    @classmethod
    def quick(cls) -> Plan:
        """A smoke-sized plan (seconds per router): same shape, small counts, one repeat."""
        return cls(repeats=1, warmup=50, scenarios=(
            Scenario(name=LATENCY, n=100, c=1),
            Scenario(name=PLAIN, n=400, c=16),
            Scenario(name=STREAM, n=64, c=16, stream=True),
        ), memory_checkpoints=(500,))


def checkpoints(prompts: int) -> tuple[int, ...]:
    """Memory checkpoints for `prompts` distinct prompts: at 1 %, 10 % and all of them."""
    _require(prompts > 0, "memory_prompts", prompts, "must be > 0")
    return tuple(sorted({max(1, prompts // 100), max(1, prompts // 10), prompts}))
