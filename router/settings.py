"""The router's settings: one typed, frozen object, built once at the edge (CLI flags, a
JSON/YAML file rendered by the `Router` component, or both) and handed to `create_app`.

This is a contract: `stack_components.Router` renders `RouterSettings.to_dict()` into a
ConfigMap and the router reads it back with `RouterSettings.from_dict()`. Every invalid
value raises `SettingsError` naming the field, the value and what is allowed.

`build_settings(file, **flags)` is the one way in: flags (or their environment variables,
resolved by the CLI) over the file over the defaults. Pure apart from reading the file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contracts import ENGINE_PORT, HEADER_PRIORITY, HEADER_USER_ID, LABEL_ROLE, ROLE_ENGINE, ROUTER_PORT
from contracts.kv_events import KV_EVENTS_PORT, KV_REPLAY_PORT, KV_SCORING_EVENTS, KV_SCORINGS


class SettingsError(ValueError):
    """An invalid router setting; the message names the field, the value and what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str) -> None:
        super().__init__(f"router setting '{field_name}' {allowed} (got {value!r})")
        self.field_name = field_name
        self.value = value
        self.allowed = allowed


def _require(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise SettingsError(name, value, allowed)


@dataclass(frozen=True, kw_only=True)
class StaticEngine:
    """One engine at a fixed URL (local runs, tests)."""

    url: str
    model: str | None = None  # None: learn it from the engine's /v1/models
    gpu_cache_tokens: int | None = None  # None: the settings' default capacity
    cpu_cache_tokens: int = 0

    def __post_init__(self) -> None:
        _require(self.url.startswith(("http://", "https://")), "engines.url", self.url,
                 "must be an http:// or https:// URL")


@dataclass(frozen=True, kw_only=True)
class KubernetesDiscovery:
    """Engines are the ready pods matching a label selector in one namespace (watched)."""

    namespace: str
    label_selector: str = f"{LABEL_ROLE}={ROLE_ENGINE}"
    port: int = ENGINE_PORT
    scheme: str = "http"
    # The Kubernetes API; None: in-cluster (KUBERNETES_SERVICE_HOST/PORT, read when the app starts).
    api_server: str | None = None
    token_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    ca_file: str | None = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"  # None: system CAs
    # Each watch asks the API server to end it after this long (`timeoutSeconds`, "regardless of
    # any activity or inactivity", the Kubernetes API reference) and is abandoned when nothing
    # arrives for half as long again (`watch_silence_s`): a connection dropped without a reset
    # (a NAT or load balancer forgetting it) stops discovery for at most that long, not forever.
    watch_timeout_s: int = 60

    def __post_init__(self) -> None:
        _require(bool(self.namespace), "discovery.namespace", self.namespace, "must be non-empty")
        _require(0 < self.port < 65536, "discovery.port", self.port, "must be in 1..65535")
        _require(self.scheme in ("http", "https"), "discovery.scheme", self.scheme, "must be http or https")
        _require(isinstance(self.watch_timeout_s, int) and 1 <= self.watch_timeout_s <= 3600,
                 "discovery.watch_timeout_s", self.watch_timeout_s, "must be a whole number in 1..3600 s")

    @property
    def watch_silence_s(self) -> float:
        """How long a watch may send nothing before it is abandoned and the pods re-listed."""
        return self.watch_timeout_s + max(2, self.watch_timeout_s // 2)
        _require(self.api_server is None or self.api_server.startswith(("http://", "https://")),
                 "discovery.api_server", self.api_server, "must be an http(s):// URL or unset")


@dataclass(frozen=True, kw_only=True)
class FileDiscovery:
    """Engines are the targets of a Prometheus file_sd-style file, re-read when it changes
    (see `router.shell.discovery.file`)."""

    path: str
    interval_s: float = 0.5  # how often the file's identity is checked
    scheme: str = "http"  # unless a group's `__scheme__` label says otherwise

    def __post_init__(self) -> None:
        _require(bool(self.path), "file_discovery.path", self.path, "must be non-empty")
        _require(self.interval_s > 0, "file_discovery.interval_s", self.interval_s, "must be > 0")
        _require(self.scheme in ("http", "https"), "file_discovery.scheme", self.scheme,
                 "must be http or https")


@dataclass(frozen=True, kw_only=True)
class PolicySettings:
    """The routing policy by kind, with its parameters (validated by the policy's config)."""

    kind: str = "prefix"
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sole_router(self) -> bool:
        """Whether the params say this router is the stack's only one (`prefix`'s `sole_router`)."""
        return isinstance(self.params, Mapping) and self.params.get("sole_router") is True


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_body_bytes: int = 8 * 1024 * 1024
    rate_limit_rps: float | None = None  # per API key (or per client when no keys)
    rate_limit_burst: int = 50
    upstream_connect_timeout_s: float = 2.0
    max_retries: int = 1  # retries on another engine when one fails before the first byte
    max_migrations: int = 2  # times one stream may move to another engine after its first byte

    def __post_init__(self) -> None:
        _require(self.max_body_bytes > 0, "limits.max_body_bytes", self.max_body_bytes, "must be > 0")
        _require(self.rate_limit_rps is None or self.rate_limit_rps > 0,
                 "limits.rate_limit_rps", self.rate_limit_rps, "must be > 0 or unset")
        _require(self.max_retries >= 0, "limits.max_retries", self.max_retries, "must be >= 0")
        _require(0 <= self.max_migrations <= 16, "limits.max_migrations", self.max_migrations,
                 "must be in 0..16 (0: a stream whose engine fails ends with an error event)")
        _require(self.upstream_connect_timeout_s > 0, "limits.upstream_connect_timeout_s",
                 self.upstream_connect_timeout_s, "must be > 0 (seconds)")


@dataclass(frozen=True, kw_only=True)
class Deadlines:
    """How long the router waits on an engine for one request before it gives up on that
    engine: retried elsewhere before the first byte, migrated after it (`router.routing.migration`),
    and counted against the engine (`EjectionSettings`). `whole_s` bounds the whole answer, from
    the request's first attempt. The `Router` component renders these per model from the
    model's expected prefill time (`stack_components.deadlines`)."""

    first_byte_s: float = 60.0
    inter_chunk_s: float = 30.0
    whole_s: float = 1800.0

    def check(self, prefix: str) -> None:
        for name in ("first_byte_s", "inter_chunk_s", "whole_s"):
            value = getattr(self, name)
            _require(isinstance(value, int | float) and 0 < value <= 86_400, prefix + name, value,
                     "must be in (0, 86400] seconds")
        _require(self.whole_s >= self.first_byte_s, prefix + "whole_s", self.whole_s,
                 f"must be >= first_byte_s ({self.first_byte_s})")


@dataclass(frozen=True, kw_only=True)
class DeadlineSettings:
    """`default` for every model, `models` by served model name."""

    default: Deadlines = field(default_factory=Deadlines)
    models: Mapping[str, Deadlines] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.default.check("deadlines.default.")
        for name, deadlines in self.models.items():
            _require(bool(name), "deadlines.models", name, "must name a model")
            deadlines.check(f"deadlines.models.{name}.")

    def for_model(self, model: str) -> Deadlines:
        return self.models.get(model, self.default)


@dataclass(frozen=True, kw_only=True)
class EjectionSettings:
    """Passive ejection (`router.routing.ejection`): an engine out of rotation after `failures`
    failed requests within `window_s`, for at least `min_out_s`; never more than
    `max_out_fraction` of a model's engines out."""

    failures: int = 3
    window_s: float = 30.0
    min_out_s: float = 30.0
    max_out_fraction: float = 0.5

    def __post_init__(self) -> None:
        _require(self.failures >= 0, "ejection.failures", self.failures, "must be >= 0 (0: never eject)")
        _require(self.window_s > 0, "ejection.window_s", self.window_s, "must be > 0 (seconds)")
        _require(self.min_out_s >= 0, "ejection.min_out_s", self.min_out_s, "must be >= 0 (seconds)")
        _require(0 <= self.max_out_fraction <= 1, "ejection.max_out_fraction", self.max_out_fraction,
                 "must be in [0, 1]")


@dataclass(frozen=True, kw_only=True)
class HealthSettings:
    """Active health checks. An engine that stops answering is out of rotation within about
    `unhealthy_after × max(interval_s, timeout_s) + interval_s` (10 s with the defaults). The
    timeout tolerates an engine whose event loop is busy (a long prefill, a large batch being
    detokenised): vLLM answers `/health` from the same loop as completions, and ejecting a busy
    engine moves its load onto the others. A hung engine is caught sooner by the requests'
    deadlines and passive ejection (`Deadlines`, `EjectionSettings`)."""

    interval_s: float = 1.0
    timeout_s: float = 3.0
    unhealthy_after: int = 3  # consecutive failures
    healthy_after: int = 1
    metrics_interval_s: float = 1.0  # scrape engine /metrics for waiting/running

    def __post_init__(self) -> None:
        _require(self.interval_s > 0, "health.interval_s", self.interval_s, "must be > 0")
        _require(self.unhealthy_after >= 1, "health.unhealthy_after", self.unhealthy_after, "must be >= 1")
        _require(self.timeout_s > 0, "health.timeout_s", self.timeout_s, "must be > 0")
        _require(self.healthy_after >= 1, "health.healthy_after", self.healthy_after, "must be >= 1")


@dataclass(frozen=True, kw_only=True)
class QueueSettings:
    """The hold queue (`router.routing.hold_queue`): requests that no engine of their model can
    take yet (none exists, all unhealthy, all at `max_in_flight_per_engine`) wait here, per
    router process, instead of being refused. Priority: the key's class (a keys-file line
    `KEY class=NAME`), lowered (never raised) by the `priority_header` a request sends."""

    max_held: int = 1024  # per model and router process; 0: never hold (503 at once)
    max_wait_s: float = 600.0  # the OpenAI Python client's default timeout (openai/_constants.py)
    max_in_flight_per_engine: int | None = None  # None: an engine in rotation always has room
    classes: tuple[str, ...] = ("high", "normal", "low")  # highest first
    default_class: str = "normal"
    priority_header: str = HEADER_PRIORITY

    def __post_init__(self) -> None:
        _require(0 <= self.max_held <= 1_000_000, "queue.max_held", self.max_held, "must be in 0..1000000")
        _require(0 < self.max_wait_s <= 3600, "queue.max_wait_s", self.max_wait_s, "must be in (0, 3600] s")
        _require(self.max_in_flight_per_engine is None or self.max_in_flight_per_engine >= 1,
                 "queue.max_in_flight_per_engine", self.max_in_flight_per_engine, "must be >= 1 or unset")
        _require(1 <= len(self.classes) <= 8 and len(set(self.classes)) == len(self.classes)
                 and all(isinstance(c, str) and c for c in self.classes),
                 "queue.classes", self.classes, "must be 1..8 distinct non-empty names, highest first")
        _require(self.default_class in self.classes, "queue.default_class", self.default_class,
                 f"must be one of queue.classes ({', '.join(self.classes)})")
        _require(bool(self.priority_header), "queue.priority_header", self.priority_header,
                 "must be a non-empty header name")

    @property
    def holds(self) -> bool:
        return self.max_held > 0


@dataclass(frozen=True, kw_only=True)
class KvEventsSettings:
    """Subscribing to the engines' KV-cache events (`router.shell.kv_events`): one SUB socket per
    engine on `<engine host>:port`, replay from `<engine host>:replay_port` (DEALER). An engine
    whose publisher is unreachable for `stale_after_s` is `stale`, one whose lost batches replay
    cannot return is `untrusted`; either way a policy falls back to its own estimate for it. Off
    by default: the `Router` component turns it on when the stack's engines publish.

    `scoring`: `events` (the default) scores the engines whose events are live by the blocks they
    report, each request's prompt tokenised by one of its engines (`POST /tokenize`, bounded by
    `tokenize_timeout_s`; `router.shell.tokenize`); `approximate` routes on the policy's own
    estimate alone (events are still followed, and shown on /health and /metrics). `cold_join_s`:
    a starting router answers /health 503 until every engine's feed has left `syncing` (its
    replay buffer read) or this long has passed (0: never wait)."""

    enabled: bool = False
    port: int = KV_EVENTS_PORT
    replay_port: int | None = KV_REPLAY_PORT  # None: the engines keep no replay buffer
    stale_after_s: float = 10.0
    replay_timeout_s: float = 5.0  # for the whole answer (up to 10,000 batches) to one replay
    scoring: str = KV_SCORING_EVENTS
    tokenize_timeout_s: float = 0.5
    cold_join_s: float = 10.0

    def __post_init__(self) -> None:
        _require(isinstance(self.enabled, bool), "kv_events.enabled", self.enabled, "must be true or false")
        _require(_is_port(self.port), "kv_events.port", self.port, "must be a whole number in 1..65535")
        _require(self.replay_port is None or _is_port(self.replay_port), "kv_events.replay_port",
                 self.replay_port, "must be a whole number in 1..65535, or unset (no replay)")
        _require(self.replay_port != self.port, "kv_events.replay_port", self.replay_port,
                 f"must differ from kv_events.port ({self.port})")
        for name in ("stale_after_s", "replay_timeout_s"):
            value = getattr(self, name)
            _require(isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 3600,
                     f"kv_events.{name}", value, "must be in (0, 3600] seconds")
        _require(self.scoring in KV_SCORINGS, "kv_events.scoring", self.scoring,
                 f"must be one of {', '.join(KV_SCORINGS)}")
        value = self.tokenize_timeout_s
        _require(isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 60,
                 "kv_events.tokenize_timeout_s", value, "must be in (0, 60] seconds")
        value = self.cold_join_s
        _require(isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 600,
                 "kv_events.cold_join_s", value, "must be in [0, 600] seconds (0: never wait)")

    @property
    def by_events(self) -> bool:
        """Whether requests are scored by the engines' events (enabled, scoring `events`)."""
        return self.enabled and self.scoring == KV_SCORING_EVENTS


def _is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


@dataclass(frozen=True, kw_only=True)
class RouterSettings:
    """Everything the router needs; `create_app(settings, ...)` takes exactly this."""

    engines: tuple[StaticEngine, ...] = ()
    discovery: KubernetesDiscovery | None = None
    file_discovery: FileDiscovery | None = None
    models: tuple[str, ...] = ()  # served model names; empty: whatever the engines serve
    adapters: Mapping[str, str] = field(default_factory=dict)  # LoRA adapter -> its base model (served name)
    # weighted rollouts (router.routing.rollout): stable name -> {version (an adapter): percent}
    rollouts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    policy: PolicySettings = field(default_factory=PolicySettings)
    default_gpu_cache_tokens: int = 400_000
    default_cpu_cache_tokens: int = 0
    api_keys_file: str | None = None
    api_keys_env: str | None = None
    session_header: str = HEADER_USER_ID
    limits: Limits = field(default_factory=Limits)
    health: HealthSettings = field(default_factory=HealthSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    deadlines: DeadlineSettings = field(default_factory=DeadlineSettings)
    ejection: EjectionSettings = field(default_factory=EjectionSettings)
    kv_events: KvEventsSettings = field(default_factory=KvEventsSettings)
    host: str = "0.0.0.0"
    port: int = ROUTER_PORT
    workers: int = 1
    log_level: str = "info"
    drain_s: float = 30.0  # on SIGTERM: how long open requests may run on before the router ends

    def __post_init__(self) -> None:
        _require(self.drain_s > 0, "drain_s", self.drain_s, "must be > 0 (seconds)")
        sources = bool(self.engines) + (self.discovery is not None) + (self.file_discovery is not None)
        _require(sources == 1, "engines", len(self.engines),
                 "needs exactly one of a static engine list, Kubernetes discovery or file discovery")
        _require(0 < self.port < 65536, "port", self.port, "must be in 1..65535")
        _require(1 <= self.workers <= 64, "workers", self.workers, "must be in 1..64")
        _require(self.workers == 1 or not self.policy.sole_router, "workers", self.workers,
                 "must be 1 with policy.params.sole_router: each worker process keeps its own index, so "
                 "placing new conversations by one worker's load would split their caches")
        _require(self.default_gpu_cache_tokens > 0, "default_gpu_cache_tokens",
                 self.default_gpu_cache_tokens, "must be > 0")
        self._check_adapters()
        self._check_rollouts()

    def _check_adapters(self) -> None:
        _require(isinstance(self.adapters, Mapping), "adapters", self.adapters,
                 "must map adapter names to their base model's served name")
        for name, base in self.adapters.items():
            key = f"adapters.{name}"
            _require(isinstance(name, str) and bool(name) and name not in self.models, key, name,
                     "must be a non-empty name that no base model (models) uses")
            _require(isinstance(base, str) and (not self.models or base in self.models), key, base,
                     f"must name a base model in models ({', '.join(self.models) or 'any'})")

    def _check_rollouts(self) -> None:
        _require(isinstance(self.rollouts, Mapping), "rollouts", self.rollouts,
                 "must map stable adapter names to {version: weight}")
        owner: dict[str, str] = {}
        for name, weights in self.rollouts.items():
            key = f"rollouts.{name}"
            taken = name in self.models or name in self.adapters
            _require(isinstance(name, str) and bool(name) and not taken, key, name,
                     "must be a non-empty name that no base model (models) or adapter (adapters) uses")
            check_rollout_weights(key, weights)
            for version in weights:
                _require(version in self.adapters, f"{key}.{version}", version,
                         "must be an adapter in adapters (each version is served as an adapter of its own)")
                _require(version not in owner, f"{key}.{version}", version,
                         f"must belong to one rollout (rollout '{owner.get(version)}' lists it too)")
                owner[version] = name

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; `from_dict(to_dict())` round-trips."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouterSettings:
        """Build from a plain dict (a settings file); unknown keys are errors, not ignored."""
        return _build(cls, data, "")


def check_rollout_weights(key: str, weights: Any) -> None:
    """A rollout's weights, version -> percent: whole numbers >= 0 summing to 100 (so at least
    one is above 0; a 0 keeps the version loaded and sends it no new conversation).
    `SettingsError` naming `key` (or `key.<version>`) otherwise. The one statement of this rule:
    the stack config and the engine component check rollouts with it too."""
    _require(isinstance(weights, Mapping) and bool(weights), key, weights,
             "must map one or more version names to weights")
    for version, weight in weights.items():
        _require(isinstance(version, str) and bool(version), key, version, "must name each version")
        _require(isinstance(weight, int) and not isinstance(weight, bool) and 0 <= weight <= 100,
                 f"{key}.{version}", weight, "must be a whole number in 0..100 (a percentage)")
    total = sum(weights.values())
    _require(total == 100, key, dict(weights), f"must have weights summing to 100 (they sum to {total})")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_NESTED: dict[str, type] = {
    "discovery": KubernetesDiscovery,
    "file_discovery": FileDiscovery,
    "policy": PolicySettings,
    "limits": Limits,
    "health": HealthSettings,
    "queue": QueueSettings,
    "ejection": EjectionSettings,
    "kv_events": KvEventsSettings,
}
_REPLACED = {"limits.upstream_read_timeout_s": "was replaced by 'deadlines' (first_byte_s, inter_chunk_s "
                                               "and whole_s, by default and per model)"}


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise SettingsError(prefix.rstrip(".") or "settings", data, "must be a mapping")
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if prefix + key in _REPLACED:
            raise SettingsError(prefix + key, data[key], _REPLACED[prefix + key])
    unknown = sorted(set(data) - known)
    _require(not unknown, prefix + (unknown[0] if unknown else ""), unknown,
             f"is not a known setting; allowed: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _NESTED and value is not None and cls is RouterSettings:
            value = _build(_NESTED[key], value, f"{key}.")
        elif key == "deadlines" and cls is RouterSettings and value is not None:
            value = _deadlines(value)
        elif key == "engines" and cls is RouterSettings:
            value = tuple(_build(StaticEngine, e, "engines.") for e in value)
        elif key == "models" or (key == "classes" and isinstance(value, list | tuple)):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise SettingsError(prefix.rstrip(".") or "settings", data, f"has a wrong type: {exc}") from exc


def _deadlines(data: Any) -> DeadlineSettings:
    if not isinstance(data, Mapping):
        raise SettingsError("deadlines", data, "must be a mapping with 'default' and/or 'models'")
    unknown = sorted(set(data) - {"default", "models"})
    _require(not unknown, "deadlines." + (unknown[0] if unknown else ""), unknown,
             "is not a known setting; allowed: default, models")
    default = _one_deadline(data.get("default") or {}, "deadlines.default.")
    models = data.get("models") or {}
    if not isinstance(models, Mapping):
        raise SettingsError("deadlines.models", models, "must map model names to deadlines")
    return DeadlineSettings(default=default, models={
        str(name): _one_deadline(value, f"deadlines.models.{name}.") for name, value in models.items()})


def _one_deadline(data: Any, prefix: str) -> Deadlines:
    if not isinstance(data, Mapping):
        raise SettingsError(prefix.rstrip("."), data,
                            "must be a mapping of first_byte_s, inter_chunk_s, whole_s")
    known = {f.name for f in dataclasses.fields(Deadlines)}
    unknown = sorted(set(data) - known)
    _require(not unknown, prefix + (unknown[0] if unknown else ""), unknown,
             f"is not a known setting; allowed: {', '.join(sorted(known))}")
    return Deadlines(**data)


# --- Building the settings from a file and command-line overrides -------------------------


def load_file(path: str) -> dict[str, Any]:
    """A JSON or YAML settings file (as rendered by the `Router` component) as a dict."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError("config", path, f"must be a readable file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SettingsError("config", path, f"must be valid JSON or YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError("config", path, "must hold a mapping of settings")
    return data


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def apply_overrides(data: Mapping[str, Any], *, engines: str | None = None, model: str | None = None,
                    policy: str | None = None, host: str | None = None, port: int | None = None,
                    workers: int | None = None, engine_capacity_tokens: int | None = None,
                    api_keys_file: str | None = None, engines_file: str | None = None) -> dict[str, Any]:
    """`data` with the given (non-None) command-line values laid over it."""
    out = dict(data)
    if engines is not None:
        out["engines"] = [{"url": url} for url in _split(engines)]
        out["discovery"] = out["file_discovery"] = None
    if engines_file is not None:
        out["engines"], out["discovery"] = [], None
        out["file_discovery"] = {**(out.get("file_discovery") or {}), "path": engines_file}
    if model is not None:
        out["models"] = _split(model)
    if policy is not None:
        out["policy"] = {**(out.get("policy") or {}), "kind": policy}
    scalars = {"host": host, "port": port, "workers": workers, "api_keys_file": api_keys_file,
               "default_gpu_cache_tokens": engine_capacity_tokens}
    out.update({key: value for key, value in scalars.items() if value is not None})
    return out


def build_settings(config_file: str | None = None, **overrides: Any) -> RouterSettings:
    """The settings from an optional file plus overrides (see `apply_overrides`)."""
    data = load_file(config_file) if config_file else {}
    return RouterSettings.from_dict(apply_overrides(data, **overrides))
