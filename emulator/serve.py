"""The body of `llm-stack emulate`: flags -> validated settings -> engines served until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.config import EngineConfig, KvEventsSettings
from emulator.errors import require
from emulator.faults import faults_from_flags
from emulator.kv_wire import CpuStyle, Wire
from emulator.lora import CPU_LOAD_S, DISK_LOAD_S, LoraSettings, parse_module
from emulator.timing import Timing

_TIMING_FIELDS = ("time_scale", "step_base_s", "step_seq_s", "prefill_token_s", "kv_read_token_s",
                  "cpu_load_tokens_per_s")
_ENGINE_FIELDS = ("model", "gpu_cache_tokens", "cpu_cache_tokens", "max_num_seqs", "max_num_batched_tokens",
                  "max_model_len", "default_max_tokens", "seed", "shutdown_timeout_s")


@dataclass(frozen=True, kw_only=True)
class ServeArgs:
    """Validated command line of `llm-stack emulate`."""

    configs: tuple[EngineConfig, ...]
    base_port: int
    host: str
    duration: float
    ready_file: str | None

    def __post_init__(self) -> None:
        count = len(self.configs)
        require(self.base_port == 0 or 1 <= self.base_port <= 65536 - count, "base_port", self.base_port,
                f"must be 0 (free ports) or 1..{65536 - count} for {count} engines")
        require(self.duration >= 0, "duration", self.duration, "must be >= 0 (0: until Ctrl-C)")

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any]) -> ServeArgs:
        """Build from the command's keyword arguments; raises `ConfigError` naming the flag."""
        engines = flags["engines"]
        require(1 <= engines <= 256, "engines", engines, "must be in 1..256")
        timing = Timing(**{k: flags[k] for k in _TIMING_FIELDS})
        stop_after = flags["stop_after_tokens"]
        require(stop_after >= 0, "stop_after_tokens", stop_after, "must be >= 0 (0: never)")
        faults = faults_from_flags(list(flags["fault"] or ()), engines)
        created = flags.get("created", 0)
        require(isinstance(created, int) and created >= 0, "created", created,
                "must be an integer >= 0 (0: the wall clock)")
        kv = _kv_settings(flags, engines)
        lora = _lora_settings(flags)
        configs = tuple(
            EngineConfig(timing=timing, faults=f, stop_after_tokens=stop_after or None,
                         created=created or None, kv_events=None if kv is None else kv[i], lora=lora,
                         **{k: flags[k] for k in _ENGINE_FIELDS})
            for i, f in enumerate(faults))
        return cls(configs=configs, base_port=flags["base_port"], host=flags["host"],
                   duration=flags["duration"], ready_file=flags["ready_file"])


def _choice(flags: Mapping[str, Any], name: str, default: str, kind: type[Wire] | type[CpuStyle]) -> Any:
    value = flags.get(name, default)
    allowed = [member.value for member in kind]
    require(value in allowed, name, value, f"must be one of {', '.join(allowed)}")
    return kind(value)


def _kv_settings(flags: Mapping[str, Any], engines: int) -> list[KvEventsSettings] | None:
    """One engine's KV-event settings per engine (None: `--kv-events` is off)."""
    if not flags.get("kv_events", False):
        return None
    port, host = flags.get("kv_events_port", 0), flags["host"]
    require(port == 0 or 1 <= port <= 65536 - 2 * engines, "kv_events_port", port,
            f"must be 0 (free ports) or 1..{65536 - 2 * engines} for {engines} engines")
    wire = _choice(flags, "kv_events_wire", "map", Wire)
    cpu_style = _choice(flags, "kv_cpu_events", "vllm", CpuStyle)
    steps = flags.get("kv_buffer_steps", 10_000)
    require(steps >= 1, "kv_buffer_steps", steps, "must be >= 1")
    address = f"[{host}]" if ":" in host else host
    return [KvEventsSettings(endpoint=f"tcp://{address}:{port + 2 * i if port else 0}",
                             replay_endpoint=f"tcp://{address}:{port + 2 * i + 1 if port else 0}",
                             wire=wire, cpu_style=cpu_style, int_hashes=flags.get("kv_int_hashes", False),
                             buffer_steps=steps)
            for i in range(engines)]


def _lora_settings(flags: Mapping[str, Any]) -> LoraSettings | None:
    """`--enable-lora` and its flags (None: off)."""
    if not flags.get("enable_lora", False):
        return None
    cpu = flags.get("max_cpu_loras", 0)
    return LoraSettings(max_loras=flags.get("max_loras", 1), max_cpu_loras=cpu or None,
                        max_lora_rank=flags.get("max_lora_rank", 16),
                        modules=tuple(parse_module(m) for m in flags.get("lora_modules") or ()),
                        runtime_updating=flags.get("runtime_lora_updating", False),
                        cpu_load_s=flags.get("lora_cpu_load_s", CPU_LOAD_S),
                        disk_load_s=flags.get("lora_disk_load_s", DISK_LOAD_S))


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _serve(args: ServeArgs, echo: Callable[[str], Any]) -> None:
    from emulator.runner import run_emulators, write_ready_file

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with run_emulators(args.configs, base_port=args.base_port, host=args.host) as cluster:
        for i, (url, config) in enumerate(zip(cluster.urls, args.configs, strict=True)):
            echo(f"engine {i}: {url}  model={config.model} gpu={config.gpu_cache_tokens} "
                 f"cpu={config.cpu_cache_tokens} time_scale={config.timing.time_scale}")
        if args.ready_file:
            write_ready_file(args.ready_file, cluster.urls, kv=cluster.kv_endpoints)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.duration or None)
        aborted = await asyncio.gather(*(server.shutdown() for server in cluster.servers))
    echo(f"emulated engines stopped ({sum(aborted)} requests aborted)")


def serve(args: ServeArgs, echo: Callable[[str], Any]) -> None:
    """Run the engines on a fresh (uvloop when available) event loop until stopped."""
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(_serve(args, echo))
