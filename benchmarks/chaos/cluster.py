"""The chaos run's cluster on loopback: engine processes, router replicas, the NLB's target list.

- **Engines** are `emulator.runner.EmulatorProcess`es, one engine each (so one can be sent
  SIGTERM or SIGKILL alone), published in a file_sd targets file (`write_targets`) that every
  router replica follows (`--engines-file` / `file_discovery`).
- **Router replicas** are `python -m router` processes (`local.procs.Processes`), each with
  its own port and the same settings file.
- **The NLB** is a client-side target list: the load alternates over the replicas in it. A
  replica joins once its `/health` answers 200 (what the NLB's health check sees; with the
  hold queue a router is ready before it has an engine) and leaves the list the moment it is
  deregistered: no new request goes to it afterwards. Not modelled: requests a real client
  keeps sending on a keep-alive connection the NLB still maps to a deregistered target (the
  router's drain serves those), and the NLB's own registration delay.
- **The scaler's pool** (`WakePool`): what `local.autoscale.loop.scale_loop` drives for scale
  from zero: an engine counts as a replica once started and is listed after the model's load
  delay, as `local.autoscale.engines.EnginePool` does with in-process engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.chaos.plan import CREATED, ChaosPlan
from contracts import PATH_HEALTH, PATH_METRICS, ROUTER_IN_FLIGHT, VLLM_RUNNING
from emulator.runner import EmulatorProcess
from local.autoscale.engines import write_targets
from local.autoscale.loop import router_settings, wait_until
from local.procs import Processes, free_ports

MIGRATIONS = "llmstack_router_migrations_total"
"""Streams whose engine failed after the first byte, by `outcome`: `completed` (continued on
another engine to its end) is what `migrated` counts; failed, exhausted and unsupported are
reported apart. A router without the metric reads 0."""
COMPLETED = 'outcome="completed"'
_EXIT_MARGIN_S = 3.0


def metric_sum(text: str, name: str, label: str = "", *, without: bool = False) -> float | None:
    """The sum of the samples of `name` in Prometheus text, of those whose labels include `label`
    (`key="value"`; '' for all), or with `without` of those that do not; None if absent."""
    values = [float(line.rsplit(None, 1)[1]) for line in text.splitlines()
              if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " ")
              and (label in line.rsplit(None, 1)[0]) != without]
    return sum(values) if values else None


class Engines:
    """The engine processes by URL, and the targets file listing some of them."""

    def __init__(self, plan: ChaosPlan, targets: Path) -> None:
        self.plan = plan
        self.targets = targets
        self.running: dict[str, EmulatorProcess] = {}
        self.listed: list[str] = []
        self._args = ["--model", plan.model, "--time-scale", str(plan.engine_time_scale),
                      "--shutdown-timeout", str(plan.engine_shutdown_timeout_s), "--created", str(CREATED)]

    def _start_one(self) -> EmulatorProcess:
        proc = EmulatorProcess(args=self._args, start_timeout_s=self.plan.start_timeout_s)
        return proc.__enter__()

    async def start(self, count: int = 1) -> list[str]:
        """Start `count` engines (in parallel, off the loop); their URLs. Not listed yet."""
        procs = await asyncio.gather(*(asyncio.to_thread(self._start_one) for _ in range(count)))
        for proc in procs:
            self.running[proc.urls[0]] = proc
        return [proc.urls[0] for proc in procs]

    def publish(self, urls: Sequence[str]) -> None:
        """List exactly `urls` in the targets file (atomically)."""
        self.listed = list(urls)
        write_targets(self.targets, self.listed, self.plan.model)

    async def terminate(self, url: str) -> int | None:
        """SIGTERM (the engine drains per `--shutdown-timeout`), then wait for the exit; its status."""
        proc = self.running.pop(url)
        proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(_reap, proc, self.plan.engine_shutdown_timeout_s + _EXIT_MARGIN_S)

    async def kill(self, url: str) -> int | None:
        """SIGKILL: the engine dies with its streams open."""
        proc = self.running.pop(url)
        proc.send_signal(signal.SIGKILL)
        return await asyncio.to_thread(_reap, proc, _EXIT_MARGIN_S)

    def close(self) -> None:
        for proc in self.running.values():
            proc.__exit__()
        self.running.clear()


def _reap(proc: EmulatorProcess, timeout_s: float) -> int | None:
    """The exit status within `timeout_s` (None: it had to be killed); the process's files go."""
    try:
        status: int | None = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        status = None
    proc.__exit__()
    return status


async def set_faults(session: aiohttp.ClientSession, url: str, faults: dict[str, Any]) -> None:
    """Replace an engine's fault set (`POST /emulator/faults`; `{}` clears)."""
    async with session.post(url + "/emulator/faults", json=faults) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url}: setting faults {faults} answered {resp.status}: {await resp.text()}")


async def running_requests(session: aiohttp.ClientSession, url: str) -> float:
    """The engine's `vllm:num_requests_running` (0 when it cannot be read)."""
    try:
        async with session.get(url + PATH_METRICS) as resp:
            return metric_sum(await resp.text(), VLLM_RUNNING) or 0.0
    except (aiohttp.ClientError, OSError, TimeoutError):
        return 0.0


class WakePool:
    """`scale_loop`'s pool for scale from zero: engine processes, listed after the load delay."""

    def __init__(self, engines: Engines, load_delay_s: float) -> None:
        self.engines = engines
        self.load_delay_s = load_delay_s
        self.ready_at: dict[str, float] = {}

    @property
    def replicas(self) -> int:
        return len(self.ready_at)

    async def scale_to(self, count: int, now: float) -> None:
        for url in await self.engines.start(max(0, count - self.replicas)):
            self.ready_at[url] = now + self.load_delay_s
        while self.replicas > count:
            url = max(self.ready_at, key=self.ready_at.__getitem__)
            del self.ready_at[url]
            self.engines.publish([u for u in self.engines.listed if u != url])
            await self.engines.terminate(url)

    def tick(self, now: float) -> None:
        """List the engines whose load delay has passed."""
        listed = sorted(u for u, at in self.ready_at.items() if at <= now)
        if listed != sorted(self.engines.listed):
            self.engines.publish(listed)


class Replica:
    """One router process."""

    def __init__(self, name: str, url: str, proc: subprocess.Popen) -> None:
        self.name = name
        self.url = url
        self.proc = proc
        self.migrations = 0.0
        """The latest `llmstack_router_migrations_total{outcome="completed"}` read from it."""
        self.migrations_other = 0.0
        """The latest sum of its other outcomes (failed, exhausted, unsupported)."""
        self.in_flight = 0.0
        """The latest `llmstack_router_in_flight_requests` summed over engines."""


class Routers:
    """Starts and stops router replicas that share one settings file."""

    def __init__(self, plan: ChaosPlan, procs: Processes, workdir: Path, targets: Path) -> None:
        self.plan = plan
        self.procs = procs
        self.config = workdir / "router.json"
        settings = {**router_settings(targets), "host": "127.0.0.1", "drain_s": plan.router_drain_s,
                    "queue": {"max_wait_s": plan.queue_max_wait_s}, **plan.router_clock}
        self.config.write_text(json.dumps(settings, indent=2))
        self._names = itertools.count()

    async def start(self, session: aiohttp.ClientSession) -> Replica:
        """A new replica, once its /health answers 200."""
        (port,) = free_ports(1)
        name = f"router-{next(self._names)}"
        proc = self.procs.start(name, [sys.executable, "-m", "router", "--config", str(self.config),
                                       "--port", str(port)])
        replica = Replica(name, f"http://127.0.0.1:{port}", proc)
        await wait_until(lambda: _status_ok(session, replica.url + PATH_HEALTH), self.plan.start_timeout_s,
                         name)
        return replica

    async def stop(self, replica: Replica) -> int | None:
        """SIGTERM; the replica drains (`drain_s`) and exits; SIGKILL past that (status None)."""
        await asyncio.to_thread(self.procs.stop, replica.proc, self.plan.router_drain_s + _EXIT_MARGIN_S)
        return replica.proc.returncode

    async def scrape(self, session: aiohttp.ClientSession, replica: Replica) -> None:
        """Refresh the replica's migrations counter (a missing metric reads 0) and in-flight count."""
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(replica.url + PATH_METRICS) as resp:
                text = await resp.text()
            replica.migrations = metric_sum(text, MIGRATIONS, COMPLETED) or 0.0
            replica.migrations_other = metric_sum(text, MIGRATIONS, COMPLETED, without=True) or 0.0
            replica.in_flight = metric_sum(text, ROUTER_IN_FLIGHT) or 0.0

    async def healthy_engines(self, session: aiohttp.ClientSession, replica: Replica) -> int:
        async with session.get(replica.url + PATH_HEALTH) as resp:
            return int((await resp.json())["healthy_engines"])


async def _status_ok(session: aiohttp.ClientSession, url: str) -> bool:
    async with session.get(url) as resp:
        return resp.status == 200


class TargetList:
    """The NLB as the client sees it: the registered replicas, taken in turn."""

    def __init__(self) -> None:
        self.replicas: list[Replica] = []
        self._turn = 0

    def register(self, replica: Replica) -> None:
        self.replicas.append(replica)

    def deregister(self, replica: Replica) -> None:
        self.replicas.remove(replica)

    def next(self) -> Replica:
        """The replica the next request goes to (round robin)."""
        self._turn += 1
        return self.replicas[self._turn % len(self.replicas)]


async def wait_discovered(session: aiohttp.ClientSession, routers: Routers, replicas: Sequence[Replica],
                          count: int, timeout_s: float) -> None:
    """Until every replica has exactly `count` healthy engines."""
    async def check() -> bool:
        got = [await routers.healthy_engines(session, r) for r in replicas]
        return all(n == count for n in got)
    await wait_until(check, timeout_s, f"{count} healthy engines on every router")
