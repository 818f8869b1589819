"""The benchmark's cluster on loopback: engine processes publishing KV events, router replicas.

- **Engines**: one `emulator.runner.EmulatorProcess` each, on its own loopback address
  (127.0.0.2, 127.0.0.3, ...: Linux routes all of 127/8 to `lo`), each publishing on the same
  KV-event port and replaying on the next, as pods do on their own IPs: the router's subscriber
  finds an engine's sockets from its URL's host and the settings' ports
  (`router.shell.kv_events.engine_endpoints`), so one port pair serves every engine.
- **Routers**: `python -m router` processes (`local.procs.Processes`) with a static engine list
  telling each engine's GPU capacity (the truth, or a multiple of it), the `prefix` policy and
  `kv_events.scoring` (`router_settings`, pure).
- Engines are reused between phases: `reset` restarts every engine's cache (`kv_clear:
  restart`, a new publisher from seq 0, both tiers empty) and clears its faults.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.kv_events.plan import KvPlan
from contracts import PATH_HEALTH
from emulator.runner import EmulatorProcess
from local.procs import BenchError, Processes, free_ports

FAULTS = "/emulator/faults"
REQUESTS = "/emulator/requests"
CACHED = "/emulator/cached"


def engine_host(index: int) -> str:
    """Engine `index`'s loopback address (127.0.0.1 is left to the routers and the client)."""
    return f"127.0.0.{index + 2}"


def free_port_pair(hosts: Sequence[str]) -> int:
    """A port P with P and P+1 free on every one of `hosts` (the events and replay sockets)."""
    for _ in range(50):
        (port,) = free_ports(1)
        if port < 65535 and all(_free(h, p) for h in hosts for p in (port, port + 1)):
            return port
    raise BenchError(f"no free port pair on {', '.join(hosts)}")


def _free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def router_settings(plan: KvPlan, mode: str, engines: Sequence[str], kv_port: int, *,
                    capacity_factor: float = 1.0, scoring: bool = True) -> dict[str, Any]:
    """The router's settings file for `mode`: the engines with `capacity_factor` × their real GPU
    capacity, the `prefix` policy, fast health checks. `scoring`: whether the router knows
    `kv_events.scoring` (issue 19's event scoring); without it, `approximate` is today's router
    with no subscription and `events` cannot run."""
    told = round(plan.gpu_cache_tokens * capacity_factor)
    kv: dict[str, Any] = {"enabled": mode == "events" or scoring, "port": kv_port, "replay_port": kv_port + 1}
    if scoring:
        kv |= {"scoring": mode, "cold_join_s": plan.cold_join_s}
    elif mode == "events":
        raise BenchError("events mode needs a router with kv_events.scoring (issue 19's scoring)")
    else:
        kv["enabled"] = False
    return {"engines": [{"url": url, "gpu_cache_tokens": told} for url in engines], "models": [plan.model],
            "host": "127.0.0.1", "log_level": "warning", "policy": {"kind": "prefix", "params": {}},
            "health": {"interval_s": 0.2, "timeout_s": 1.0, "unhealthy_after": 3, "healthy_after": 1,
                       "metrics_interval_s": 0.2},
            "kv_events": kv, "drain_s": 2.0}


def knows_scoring() -> bool:
    """Whether this checkout's router accepts `kv_events.scoring` (the events mode exists)."""
    from router.settings import RouterSettings, SettingsError

    try:
        RouterSettings.from_dict({"engines": [{"url": "http://127.0.0.1:1"}],
                                  "kv_events": {"enabled": True, "scoring": "events"}})
    except SettingsError:
        return False
    return True


class Engines:
    """The engine processes, index i on `engine_host(i)`; see the module docstring."""

    def __init__(self, plan: KvPlan) -> None:
        self.plan = plan
        self.kv_port = free_port_pair([engine_host(i) for i in range(plan.engines)])
        self.procs: list[EmulatorProcess] = []

    @property
    def urls(self) -> list[str]:
        return [p.urls[0] for p in self.procs]

    def _args(self, index: int) -> list[str]:
        p = self.plan
        return ["--host", engine_host(index), "--model", p.model, "--time-scale", str(p.time_scale),
                "--gpu-cache-tokens", str(p.gpu_cache_tokens), "--kv-events",
                "--kv-events-port", str(self.kv_port), "--seed", str(p.seed + index)]

    async def start(self) -> None:
        def one(index: int) -> EmulatorProcess:
            proc = EmulatorProcess(args=self._args(index), start_timeout_s=self.plan.start_timeout_s)
            return proc.__enter__()
        started = await asyncio.gather(*(asyncio.to_thread(one, i) for i in range(self.plan.engines)))
        self.procs = list(started)

    async def set_faults(self, session: aiohttp.ClientSession, url: str, faults: dict[str, Any]) -> None:
        """Replace the engine's fault set (`{}` clears; `kv_clear` acts once)."""
        async with session.post(url + FAULTS, json=faults) as resp:
            if resp.status != 200:
                raise BenchError(f"{url}: faults {faults} answered {resp.status}: {await resp.text()}")

    async def reset(self, session: aiohttp.ClientSession, faults: dict[str, Any] | None = None) -> None:
        """Every engine restarted empty (a new publisher), then given `faults` (none by default)."""
        for url in self.urls:
            await self.set_faults(session, url, {"kv_clear": "restart"})
            await self.set_faults(session, url, faults or {})

    def close(self) -> None:
        for proc in self.procs:
            proc.__exit__()
        self.procs = []


@dataclass
class Replica:
    """One router process."""

    name: str
    url: str
    pid: int
    started: float
    """`time.monotonic()` at its start."""


class Routers:
    """Starts and stops router processes, each with its own settings file."""

    def __init__(self, procs: Processes, workdir: Path, plan: KvPlan) -> None:
        self.procs = procs
        self.workdir = workdir
        self.plan = plan
        self._count = 0
        self._popen: dict[str, Any] = {}

    def start(self, settings: dict[str, Any], label: str) -> Replica:
        """Start a router (not waiting for it)."""
        self._count += 1
        name = f"router-{self._count}-{label}"
        config = self.workdir / f"{name}.json"
        config.write_text(json.dumps(settings, indent=2))
        (port,) = free_ports(1)
        argv = [sys.executable, "-m", "router", "--config", str(config), "--port", str(port)]
        proc = self.procs.start(name, argv)
        self._popen[name] = proc
        return Replica(name=name, url=f"http://127.0.0.1:{port}", pid=proc.pid, started=time.monotonic())

    async def ready(self, session: aiohttp.ClientSession, replica: Replica, engines: int) -> float:
        """Wait until `/health` answers 200 with every engine healthy and, where it subscribes,
        every engine's KV-event stream out of `syncing` (live, or untrusted: the router then
        falls back for that engine, which the figures show); the seconds since its start."""
        end = replica.started + self.plan.start_timeout_s
        last = "no answer"
        while time.monotonic() < end:
            status = self._popen[replica.name].poll()
            if status is not None:
                raise BenchError(f"{replica.name} exited with {status} (see its log)")
            try:
                async with session.get(replica.url + PATH_HEALTH) as resp:
                    body = await resp.json() if resp.status == 200 else None
                    last = f"{resp.status} {body}"
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                body, last = None, repr(exc)
            if body is not None and body.get("healthy_engines") == engines and _feeds_synced(body):
                return time.monotonic() - replica.started
            await asyncio.sleep(0.02)
        raise BenchError(f"{replica.name} not ready within {self.plan.start_timeout_s} s (last: {last})")

    def alive(self, replica: Replica) -> bool:
        return self._popen[replica.name].poll() is None

    async def stop(self, replica: Replica) -> None:
        await asyncio.to_thread(self.procs.stop, self._popen.pop(replica.name), 5.0)


def _feeds_synced(health: dict[str, Any]) -> bool:
    feeds = health.get("kv_events")
    return feeds is None or all(state != "syncing" for state in feeds.values())
