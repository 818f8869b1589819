"""`BenchConfig`: the one validated description of a benchmark run (CLI and Python API).

Error messages name the flag (`--users`), the bad value and what is allowed, so the CLI can
print them verbatim and a Python caller reads the same words.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.errors import ConfigError

_MAX_SWEEP_POINTS = 200


def _flag(name: str) -> str:
    """The CLI flag of a field: `duration_s` and `durations_s` -> `--duration`."""
    return "--" + name.removesuffix("_s").replace("durations", "duration").replace("_", "-")


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _require(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{_flag(name)}: must be {allowed} (got {value!r})")


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """A multi-round QA run: the endpoint, the workload shape and the QPS sweep.

    `qps` holds one value or several (a sweep, run in order); each point lasts `duration_s`
    seconds of launches (or `durations_s[i]`, one per QPS value), then waits up to `drain_s` for
    answers still streaming. `warmup` resends each initial user's previous round once before
    the first point (unmeasured), as the original's run.sh warms up before its sweep.
    `metrics_urls=None` means: the base URL's /metrics if it exposes vLLM counters.
    """

    base_url: str = "http://127.0.0.1:8000"
    model: str = ""
    api_key: str = ""
    users: int = 320
    rounds: int = 10
    system_prompt_tokens: int = 1000
    history_tokens: int = 20000
    question_tokens: int = 32
    answer_tokens: int = 100
    qps: tuple[float, ...] = (1.0,)
    duration_s: float = 60.0
    durations_s: tuple[float, ...] | None = None
    seed: int = 0
    sharegpt: str | None = None
    metrics_urls: tuple[str, ...] | None = None
    request_timeout_s: float = 600.0
    drain_s: float = 60.0
    label: str = ""
    warmup: bool = True
    warmup_concurrency: int = 8
    extra_body: dict[str, Any] = field(default_factory=lambda: {"ignore_eos": True})

    def __post_init__(self) -> None:
        _require(self.base_url.startswith(("http://", "https://")), "base_url", self.base_url,
                 "an http:// or https:// URL")
        for name in ("users", "rounds", "question_tokens", "answer_tokens", "warmup_concurrency"):
            _require(getattr(self, name) >= 1, name, getattr(self, name), "at least 1")
        for name in ("system_prompt_tokens", "history_tokens"):
            _require(getattr(self, name) >= 0, name, getattr(self, name), "0 or more")
        for name in ("duration_s", "request_timeout_s"):
            value = getattr(self, name)
            _require(_positive(value), name, value, "a positive number of seconds")
        _require(math.isfinite(self.drain_s) and self.drain_s >= 0, "drain_s", self.drain_s,
                 "0 or more seconds")
        self._check_sweep()

    def _check_sweep(self) -> None:
        _require(1 <= len(self.qps) <= _MAX_SWEEP_POINTS, "qps", self.qps, f"1 to {_MAX_SWEEP_POINTS} values")
        for value in self.qps:
            _require(_positive(value), "qps", value, "a positive number of requests/s")
        if self.durations_s is not None:
            _require(len(self.durations_s) == len(self.qps), "durations_s", self.durations_s,
                     f"one duration per --qps value ({len(self.qps)})")
            for value in self.durations_s:
                _require(_positive(value), "durations_s", value, "a positive number of seconds")

    def duration_for(self, point: int) -> float:
        """The launch window of QPS point `point`."""
        return self.duration_s if self.durations_s is None else self.durations_s[point]

    @property
    def root_url(self) -> str:
        """The server root: the base URL without a trailing `/` or `/v1`."""
        url = self.base_url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view for summary.json (the API key is never written)."""
        out = asdict(self)
        out["api_key"] = "***" if self.api_key else ""
        out["qps"] = list(self.qps)
        out["durations_s"] = [self.duration_for(i) for i in range(len(self.qps))]
        out["metrics_urls"] = list(self.metrics_urls) if self.metrics_urls is not None else None
        return out


def parse_qps(text: str) -> tuple[float, ...]:
    """`--qps`: one value (`4`), a comma list (`0.1,0.5,1`) or an inclusive range
    `start:stop:step` (`0.1:4.1:0.5`)."""
    text = text.strip()
    try:
        if ":" in text:
            return _qps_range(text)
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"--qps: must be a number, a comma list or start:stop:step (got {text!r})"
        ) from None
    if not values:
        raise ConfigError(f"--qps: must hold at least one value (got {text!r})")
    return values


def _qps_range(text: str) -> tuple[float, ...]:
    start, stop, step = (float(part) for part in text.split(":"))
    if not step > 0 or stop < start:
        raise ConfigError(f"--qps: range needs step > 0 and stop >= start (got {text!r})")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > _MAX_SWEEP_POINTS:
        raise ConfigError(f"--qps: range gives {count} points, at most {_MAX_SWEEP_POINTS} allowed")
    return tuple(round(start + i * step, 9) for i in range(count))


def parse_durations(text: str) -> tuple[float, ...]:
    """`--duration`: one number of seconds, or a comma list (one per --qps value)."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--duration: must be seconds or a comma list of seconds (got {text!r})") from None
    if not values:
        raise ConfigError(f"--duration: must hold at least one value (got {text!r})")
    return values
