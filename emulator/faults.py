"""Faults an emulated engine can be told to show, per engine, at start or at runtime.

- `status`: every API request (not `/emulator/*`) is answered with this HTTP status and a
  vLLM-style error body; 5xx (or 429) makes the engine look broken or overloaded, including
  `/health`.
- `fail_rate` / `fail_after_tokens`: that fraction of generation requests fails; with
  `fail_after_tokens == 0` before any output (HTTP 500, error JSON), otherwise a stream breaks
  after that many tokens with an error event (then `[DONE]`, as vLLM); non-streamed: HTTP 500.
- `stall` (a hung engine): generation and embedding requests are accepted and never answered,
  not even a response head (until the client gives up); `/health`, `/metrics` and
  `/v1/models` still answer.
- `stall_after_tokens`: a stream stalls mid-generation: after that many tokens it sends
  nothing more and keeps its connection open (until the client gives up).
- `die_after_tokens`: the engine dies (as `dead`) when a stream reaches that many tokens: its
  listener closes and every open connection is reset mid-stream.
- `health_delay_s`: `GET /health` answers only after that many seconds (a busy API server).
- `xid`: the engine's emulated GPU reports this XID error (dcgm-exporter's
  `DCGM_FI_DEV_XID_ERRORS`, the last XID seen); requests are still served.
- `dead`: the engine stops listening and drops its open connections (clients see connection
  refused / reset); with `revive_after_s` it comes back after that many seconds.

KV-event faults (engines publishing KV events, `emulator.kv_publisher`); a batch always gets
its seq and its place in the replay buffer, the faults only change what the PUB socket sends:
- `kv_drop_rate`: that fraction of batches is never sent live (a seq gap a subscriber can
  replay while the batch is still buffered, as when PUB drops past its high-water mark).
- `kv_reorder_rate`: that fraction of batches is held back and sent right after the next one
  (a held batch also goes out when the faults are set again, or is lost with a restart).
- `kv_delay_s`: every batch is sent that many seconds late, in order.
- `kv_clear`: an action, done once when a fault set carrying it is applied (then stored as
  null): "reset" empties the GPU tier and publishes `AllBlocksCleared` on the same stream
  (vLLM's `reset_prefix_cache` without `reset_connector`: offloaded copies stay); "restart"
  empties both tiers and starts a new publisher, as a restarted engine: seq from 0, an empty
  replay buffer, no `AllBlocksCleared` (vLLM sends none at start), batches not yet sent lost.
  Requests running meanwhile go on (their blocks no longer cached). The POST's answer echoes
  the action; `GET /emulator/faults` shows null.

Set at start with `--fault ENGINE:NAME[=VALUE]` (e.g. `--fault 1:dead`, `--fault 0:status=503`)
and at runtime with `POST /emulator/faults` whose JSON body is the whole new fault set (`{}`
clears every fault). Pure values and parsers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from emulator.errors import ConfigError, require

KV_CLEAR_RESET = "reset"
KV_CLEAR_RESTART = "restart"
KV_CLEARS = (None, KV_CLEAR_RESET, KV_CLEAR_RESTART)


@dataclass(frozen=True, kw_only=True)
class Faults:
    """The fault set of one engine; the default is a healthy engine."""

    status: int | None = None
    fail_rate: float = 0.0
    fail_after_tokens: int = 0
    stall: bool = False
    stall_after_tokens: int = 0
    die_after_tokens: int = 0
    health_delay_s: float = 0.0
    dead: bool = False
    revive_after_s: float | None = None
    xid: int = 0
    kv_drop_rate: float = 0.0
    kv_reorder_rate: float = 0.0
    kv_delay_s: float = 0.0
    kv_clear: str | None = None

    def __post_init__(self) -> None:
        require(self.status is None or (_is_int(self.status) and 400 <= self.status <= 599), "status",
                self.status, "must be null or an HTTP error status in 400..599")
        require(_is_num(self.fail_rate) and 0.0 <= self.fail_rate <= 1.0, "fail_rate", self.fail_rate,
                "must be a number in 0..1")
        require(_is_int(self.fail_after_tokens) and self.fail_after_tokens >= 0, "fail_after_tokens",
                self.fail_after_tokens, "must be an integer >= 0")
        require(isinstance(self.stall, bool), "stall", self.stall, "must be true or false")
        for name in ("stall_after_tokens", "die_after_tokens"):
            value = getattr(self, name)
            require(_is_int(value) and value >= 0, name, value, "must be an integer >= 0 (0: off)")
        require(_is_num(self.health_delay_s) and self.health_delay_s >= 0, "health_delay_s",
                self.health_delay_s, "must be a number >= 0")
        require(isinstance(self.dead, bool), "dead", self.dead, "must be true or false")
        require(self.revive_after_s is None or (_is_num(self.revive_after_s) and self.revive_after_s > 0),
                "revive_after_s", self.revive_after_s, "must be null or a number > 0")
        require(_is_int(self.xid) and 0 <= self.xid <= 1000, "xid", self.xid, "must be an integer in 0..1000")
        for name in ("kv_drop_rate", "kv_reorder_rate"):
            value = getattr(self, name)
            require(_is_num(value) and 0.0 <= value <= 1.0, name, value, "must be a number in 0..1")
        require(_is_num(self.kv_delay_s) and 0.0 <= self.kv_delay_s <= 3600, "kv_delay_s", self.kv_delay_s,
                "must be a number of seconds in 0..3600")
        require(self.kv_clear in KV_CLEARS, "kv_clear", self.kv_clear,
                f"must be null or one of {', '.join(c for c in KV_CLEARS if c)}")

    @property
    def healthy(self) -> bool:
        """Whether no fault is set."""
        return self == Faults()

    def fails(self, draw: float) -> bool:
        """Whether a request with uniform draw `draw` in [0, 1) fails."""
        return draw < self.fail_rate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fault set (the admin endpoint's answer)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Faults from a JSON object; unknown keys are an error naming the allowed ones."""
        allowed = sorted(f.name for f in fields(cls))
        for key in data:
            require(key in allowed, "faults", key, f"must be one of {', '.join(allowed)}")
        return cls(**dict(data))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


_FLAG_TYPES = {"status": int, "fail_rate": float, "fail_after_tokens": int, "revive_after_s": float,
               "xid": int, "stall_after_tokens": int, "die_after_tokens": int, "health_delay_s": float,
               "kv_drop_rate": float, "kv_reorder_rate": float, "kv_delay_s": float, "kv_clear": str}
_FLAG_SWITCHES = ("stall", "dead")


def parse_fault_flag(text: str, engines: int) -> tuple[int, str, Any]:
    """`ENGINE:NAME[=VALUE]` -> (engine index, field, value); errors name the flag and value."""
    index_text, sep, rest = text.partition(":")
    name, has_value, value_text = rest.partition("=")
    if not sep or not index_text.isdigit() or int(index_text) >= engines:
        raise ConfigError("--fault", text, f"must start with an engine index in 0..{engines - 1} and ':'")
    if name in _FLAG_SWITCHES and not has_value:
        return int(index_text), name, True
    if name not in _FLAG_TYPES or not has_value:
        names = ", ".join([*_FLAG_SWITCHES, *(f"{k}=VALUE" for k in _FLAG_TYPES)])
        raise ConfigError("--fault", text, f"must be ENGINE:NAME[=VALUE] with NAME one of {names}")
    try:
        return int(index_text), name, _FLAG_TYPES[name](value_text)
    except ValueError:
        raise ConfigError("--fault", text, f"must give {name} a {_FLAG_TYPES[name].__name__}") from None


def faults_from_flags(flags: list[str], engines: int) -> list[Faults]:
    """One `Faults` per engine from repeated `--fault` flags (validated)."""
    per_engine: list[dict[str, Any]] = [{} for _ in range(engines)]
    for flag in flags:
        index, name, value = parse_fault_flag(flag, engines)
        per_engine[index][name] = value
    return [Faults.from_dict(d) for d in per_engine]
