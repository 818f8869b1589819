"""Prometheus text exposition of one emulated engine, with vLLM's metric names and buckets.

Every name comes from `contracts` (never retyped): gauges for the running batch, the
waiting queue and KV-cache usage (a 0..1 fraction, as vLLM exports it), counters for prefix
-cache queries/hits and prompt/generation tokens, and histograms for TTFT, inter-token latency,
end-to-end latency and time waiting to be scheduled with the bucket bounds vLLM uses. Label:
`model_name`. Pure: the shell observes values and asks for the text.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from contracts import (
    ENGINE_MODEL_LABEL,
    LMCACHE_HIT_TOKENS,
    LMCACHE_REQUESTED_TOKENS,
    VLLM_E2E,
    VLLM_EXTERNAL_PREFIX_HITS,
    VLLM_EXTERNAL_PREFIX_QUERIES,
    VLLM_GENERATION_TOKENS,
    VLLM_ITL,
    VLLM_KV_USAGE,
    VLLM_LORA_INFO,
    VLLM_LORA_MAX_LABEL,
    VLLM_LORA_RUNNING_LABEL,
    VLLM_LORA_WAITING_LABEL,
    VLLM_PREFIX_HITS,
    VLLM_PREFIX_QUERIES,
    VLLM_PROMPT_TOKENS,
    VLLM_QUEUE_TIME,
    VLLM_RUNNING,
    VLLM_TTFT,
    VLLM_WAITING,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
               10.0, 20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
               120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)


class Histogram:
    """Cumulative-on-render histogram with fixed upper bounds (plus +Inf)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Record one value (`le` buckets: a value equal to a bound falls in that bucket)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, label: str) -> list[str]:
        """Exposition lines: cumulative buckets, sum, count."""
        out: list[str] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            out.append(f'{name}_bucket{{{label},le="{le}"}} {running}')
        out.append(f"{name}_sum{{{label}}} {self.sum!r}")
        out.append(f"{name}_count{{{label}}} {self.count}")
        return out


@dataclass(frozen=True, kw_only=True)
class Gauges:
    """Scheduler state at the moment of a scrape."""

    running: int
    waiting: int
    kv_usage: float


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def lora_info_lines(max_loras: int, series: Mapping[str, float]) -> list[str]:
    """vLLM's `vllm:lora_requests_info` (vllm/v1/metrics/loggers.py): one series per label set
    ever set, labels in its order (max_lora, waiting, running), the value the Unix time it was last
    set (`set_to_current_time`); no model label. `series`: comma-joined adapters -> time."""
    lines = [f"# HELP {VLLM_LORA_INFO} Running stats on lora requests.", f"# TYPE {VLLM_LORA_INFO} gauge"]
    for adapters, when in series.items():
        names = _escape(adapters)
        lines.append(f'{VLLM_LORA_INFO}{{{VLLM_LORA_MAX_LABEL}="{max_loras}",{VLLM_LORA_WAITING_LABEL}="{names}",'
                     f'{VLLM_LORA_RUNNING_LABEL}="{names}"}} {when!r}')
    return lines


class EngineMetrics:
    """Counters and histograms of one engine, rendered in Prometheus text format 0.0.4."""

    def __init__(self, model: str) -> None:
        self.label = f'{ENGINE_MODEL_LABEL}="{_escape(model)}"'
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self.queue_time = Histogram(E2E_BUCKETS)  # vLLM: request_latency buckets for both

    def render(self, gauges: Gauges, *, queried_tokens: int, hit_tokens: int, cpu_hit_tokens: int = 0,
               lora: tuple[int, Mapping[str, float]] | None = None) -> str:
        """The whole `/metrics` body. LMCache's counters ride along, as in a vLLM process with
        LMCache: the tokens it was asked for (those the GPU prefix cache missed) and those it had.
        `lora`: `--max-loras` and the `vllm:lora_requests_info` series (`lora_info_lines`)."""
        lines: list[str] = [] if lora is None else lora_info_lines(*lora)
        self._scalar(lines, VLLM_RUNNING, "gauge", "Requests in the running batch.", gauges.running)
        self._scalar(lines, VLLM_WAITING, "gauge", "Requests waiting to be scheduled.", gauges.waiting)
        self._scalar(lines, VLLM_KV_USAGE, "gauge", "KV-cache usage. 1 means 100 percent usage.",
                     gauges.kv_usage)
        self._scalar(lines, VLLM_PREFIX_QUERIES, "counter", "Prefix cache queries, in tokens.",
                     queried_tokens)
        self._scalar(lines, VLLM_PREFIX_HITS, "counter", "Prefix cache hits, in tokens.", hit_tokens)
        self._scalar(lines, LMCACHE_REQUESTED_TOKENS, "counter", "Tokens requested from LMCache.",
                     queried_tokens - hit_tokens)
        self._scalar(lines, LMCACHE_HIT_TOKENS, "counter", "Tokens hit in LMCache.", cpu_hit_tokens)
        # vLLM 0.33 exports its KV connector's share too, per engine, connector or not
        # (vllm/v1/metrics/loggers.py, `vllm:external_prefix_cache_{queries,hits}`)
        self._scalar(lines, VLLM_EXTERNAL_PREFIX_QUERIES, "counter",
                     "External prefix cache queries from KV connector, in tokens.",
                     queried_tokens - hit_tokens)
        self._scalar(lines, VLLM_EXTERNAL_PREFIX_HITS, "counter",
                     "External prefix cache hits from KV connector, in tokens.", cpu_hit_tokens)
        self._scalar(lines, VLLM_PROMPT_TOKENS, "counter", "Prefill tokens processed.", self.prompt_tokens)
        self._scalar(lines, VLLM_GENERATION_TOKENS, "counter", "Generation tokens processed.",
                     self.generation_tokens)
        for name, helptext, hist in (
            (VLLM_TTFT, "Histogram of time to first token in seconds.", self.ttft),
            (VLLM_ITL, "Histogram of inter-token latency in seconds.", self.itl),
            (VLLM_E2E, "Histogram of e2e request latency in seconds.", self.e2e),
            (VLLM_QUEUE_TIME, "Histogram of time spent in WAITING phase for request.", self.queue_time),
        ):
            lines += [f"# HELP {name} {helptext}", f"# TYPE {name} histogram"]
            lines += hist.lines(name, self.label)
        return "\n".join(lines) + "\n"

    def _scalar(self, lines: list[str], name: str, kind: str, helptext: str, value: float) -> None:
        lines += [f"# HELP {name} {helptext}", f"# TYPE {name} {kind}", f"{name}{{{self.label}}} {value}"]
