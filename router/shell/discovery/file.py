"""File discovery: the engines are the targets listed in a file, re-read when it changes.

The file has the shape of Prometheus' file-based service discovery (`file_sd_configs`), so one
file can feed both the router and a Prometheus scraping the same engines:

    [{"targets": ["10.0.0.5:8000", "10.0.0.6:8000"],
      "labels": {"model_name": "meta-llama/Llama-3.1-8B-Instruct",
                 "__llmstack_gpu_cache_tokens": "400000", "__llmstack_cpu_cache_tokens": "920000"}}]

JSON or YAML. `model_name` (the engines' own metric label) names the served model; the
`__llmstack_*` capacities are dropped by Prometheus (labels starting with `__` do not survive
relabelling) and default to the settings' defaults; `__scheme__` (Prometheus' own) picks
http or https. Whoever writes the file should replace it atomically (write, then rename).

`parse_targets` is pure; `FileWatcher` is the I/O shell the app runs as a task: it polls the
file's identity (inode, size, mtime) every `interval_s` and applies a new engine set when it
changes. A file that cannot be parsed keeps the last good set (and says so in the log); a
missing file means no engines.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from contracts import ENGINE_MODEL_LABEL
from router.routing.engines import EngineSpec
from router.settings import FileDiscovery

log = logging.getLogger(__name__)

GPU_TOKENS_LABEL = "__llmstack_gpu_cache_tokens"
CPU_TOKENS_LABEL = "__llmstack_cpu_cache_tokens"
SCHEME_LABEL = "__scheme__"
Apply = Callable[[list[EngineSpec]], None]


class TargetsFileError(ValueError):
    """The targets file does not have the file_sd shape; the message says where."""


def _tokens(labels: Mapping[str, Any], key: str, default: int, where: str) -> int:
    raw = labels.get(key)
    if raw is None:
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise TargetsFileError(f"{where}: label {key} must be an integer (got {raw!r})") from None
    if value < 0:
        raise TargetsFileError(f"{where}: label {key} must be >= 0 (got {value})")
    return value


def _group(group: Any, index: int, discovery: FileDiscovery, default_gpu: int,
           default_cpu: int) -> list[EngineSpec]:
    where = f"target group {index}"
    if not isinstance(group, Mapping) or not isinstance(group.get("targets"), list):
        raise TargetsFileError(f"{where} must be a mapping with a 'targets' list")
    labels = group.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise TargetsFileError(f"{where}: 'labels' must be a mapping")
    scheme = str(labels.get(SCHEME_LABEL, discovery.scheme))
    if scheme not in ("http", "https"):
        raise TargetsFileError(f"{where}: label {SCHEME_LABEL} must be http or https (got {scheme!r})")
    model = labels.get(ENGINE_MODEL_LABEL)
    gpu = _tokens(labels, GPU_TOKENS_LABEL, default_gpu, where) or default_gpu
    cpu = _tokens(labels, CPU_TOKENS_LABEL, default_cpu, where)
    specs = []
    for target in group["targets"]:
        if not isinstance(target, str) or not target or "/" in target:
            raise TargetsFileError(f"{where}: target {target!r} must be 'host:port'")
        specs.append(EngineSpec(url=f"{scheme}://{target}", gpu_cache_tokens=gpu, cpu_cache_tokens=cpu,
                                models=frozenset((str(model),)) if model else frozenset()))
    return specs


def parse_targets(text: str, discovery: FileDiscovery, *, default_gpu: int,
                  default_cpu: int) -> list[EngineSpec]:
    """The engines a targets file lists (an empty file: none); `TargetsFileError` if malformed."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TargetsFileError(f"not valid JSON or YAML ({exc})") from None
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise TargetsFileError("must be a list of target groups")
    by_url: dict[str, EngineSpec] = {}
    for i, group in enumerate(doc):
        for spec in _group(group, i, discovery, default_gpu, default_cpu):
            by_url[spec.url] = spec
    return list(by_url.values())


class FileWatcher:
    """Polls the targets file and applies the engine set it lists whenever the file changes."""

    def __init__(self, discovery: FileDiscovery, apply: Apply, *, default_gpu: int, default_cpu: int) -> None:
        self.discovery = discovery
        self.apply = apply
        self.default_gpu = default_gpu
        self.default_cpu = default_cpu
        self._seen: tuple[int, int, int] | None = None

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.discovery.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def poll(self) -> bool:
        """Read the file if it changed since the last poll; True when a new set was applied."""
        identity = self._identity()
        if identity == self._seen and self._seen is not None:
            return False
        self._seen = identity
        if identity is None:
            log.warning("engines file %s is missing: no engines", self.discovery.path)
            self.apply([])
            return True
        try:
            with open(self.discovery.path, encoding="utf-8") as handle:
                specs = parse_targets(handle.read(), self.discovery, default_gpu=self.default_gpu,
                                      default_cpu=self.default_cpu)
        except (OSError, TargetsFileError) as exc:
            log.warning("engines file %s not applied, keeping the last engines: %s", self.discovery.path, exc)
            return False
        self.apply(specs)
        return True

    async def run(self) -> None:
        """Poll forever (cancelled by the app)."""
        while True:
            self.poll()
            await asyncio.sleep(self.discovery.interval_s)
