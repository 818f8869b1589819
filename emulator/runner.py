"""Start N emulated engines from Python: in the caller's event loop, a thread, or a process.

    from emulator.config import EngineConfig
    from emulator.timing import Timing
    from emulator.runner import run_emulators, EmulatorThread, EmulatorProcess

    config = EngineConfig(gpu_cache_tokens=400_000, timing=Timing(time_scale=0.1))

    # async code (tests, the router's benchmarks): engines share the caller's loop
    async with run_emulators(config, engines=4) as cluster:   # base_port=0: free ports
        cluster.urls                                          # ['http://127.0.0.1:41234', ...]
        await cluster.set_faults(2, Faults(dead=True))

    # sync code: a background thread with its own loop (tests and scripts only)
    with EmulatorThread(config, engines=4, base_port=9000) as cluster:
        cluster.urls; cluster.set_faults(0, Faults(status=503))

    # a separate process (the demo: engines on their own core), same flags as the CLI
    with EmulatorProcess(engines=4, args=["--time-scale", "0.1", "--cpu-cache-tokens", "920000"]) as proc:
        proc.urls

`config` may also be a list of `EngineConfig`, one per engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.config import EngineConfig
from emulator.errors import EmulatorError, require
from emulator.faults import Faults
from emulator.server import EngineServer


@dataclass(frozen=True)
class EmulatorCluster:
    """Running engines, in port order."""

    servers: tuple[EngineServer, ...]

    @property
    def urls(self) -> list[str]:
        """Base URL of every engine."""
        return [s.url for s in self.servers]

    @property
    def kv_endpoints(self) -> dict[str, list[str | None]] | None:
        """`{"kv_events": [...], "kv_replay": [...]}`, each engine's bound KV-event endpoints
        (None where an engine does not publish); None when no engine publishes."""
        publishers = [s.kv_publisher for s in self.servers]
        if all(p is None for p in publishers):
            return None
        return {"kv_events": [None if p is None else p.endpoint for p in publishers],
                "kv_replay": [None if p is None else p.replay_endpoint for p in publishers]}

    async def set_faults(self, index: int, faults: Faults) -> None:
        """Replace engine `index`'s faults."""
        await self.servers[index].set_faults(faults)


def expand_configs(config: EngineConfig | Sequence[EngineConfig], engines: int | None) -> list[EngineConfig]:
    """One config per engine: a single config repeated, or the given list."""
    if isinstance(config, EngineConfig):
        count = 1 if engines is None else engines
        require(count >= 1, "engines", count, "must be >= 1")
        return [config] * count
    configs = list(config)
    require(bool(configs) and engines in (None, len(configs)), "engines", engines,
            f"must match the {len(configs)} configs given (and be >= 1)")
    return configs


@contextlib.asynccontextmanager
async def run_emulators(config: EngineConfig | Sequence[EngineConfig], engines: int | None = None, *,
                        base_port: int = 0, host: str = "127.0.0.1") -> AsyncIterator[EmulatorCluster]:
    """Serve engines on `base_port .. base_port+N-1` (0: free ports) until the block exits."""
    configs = expand_configs(config, engines)
    require(base_port == 0 or 1 <= base_port <= 65536 - len(configs), "base_port", base_port,
            f"must be 0 (free ports) or leave room for {len(configs)} ports below 65536")
    servers = tuple(EngineServer(c, host=host, port=base_port + i if base_port else 0)
                    for i, c in enumerate(configs))
    started: list[EngineServer] = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
        yield EmulatorCluster(servers)
    finally:
        for server in reversed(started):
            await server.stop()


class EmulatorThread:
    """`run_emulators` in a background thread with its own loop, for synchronous callers."""

    def __init__(self, config: EngineConfig | Sequence[EngineConfig], engines: int | None = None, *,
                 base_port: int = 0, host: str = "127.0.0.1", start_timeout_s: float = 10.0) -> None:
        self._args = (expand_configs(config, engines), base_port, host)
        self._timeout = start_timeout_s
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._cluster: EmulatorCluster | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="llm-stack-emulator", daemon=True)

    @property
    def urls(self) -> list[str]:
        """Base URL of every engine."""
        return self._require_cluster().urls

    def set_faults(self, index: int, faults: Faults) -> None:
        """Replace engine `index`'s faults (waits until applied)."""
        assert self._loop is not None
        work = self._require_cluster().set_faults(index, faults)
        asyncio.run_coroutine_threadsafe(work, self._loop).result(self._timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(cluster, *args)` on the emulator's loop and return its result (for inspection)."""
        assert self._loop is not None

        async def run() -> Any:
            return fn(self._require_cluster(), *args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(self._timeout)

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise EmulatorError(f"emulated engines did not start within {self._timeout} s")
        if self._error is not None:
            raise EmulatorError(f"emulated engines failed to start: {self._error}") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(self._timeout)

    def _require_cluster(self) -> EmulatorCluster:
        if self._cluster is None:
            raise EmulatorError("the emulator thread is not running")
        return self._cluster

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread, not swallowed
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        configs, base_port, host = self._args
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_emulators(configs, base_port=base_port, host=host) as cluster:
            self._cluster = cluster
            self._ready.set()
            await self._stop.wait()
        self._cluster = None


class EmulatorProcess:
    """`llm-stack emulate` in a child process; `args` are extra CLI flags."""

    def __init__(self, engines: int = 1, *, base_port: int = 0, args: Sequence[str] = (),
                 start_timeout_s: float = 20.0) -> None:
        self.engines = engines
        self._tmp = tempfile.TemporaryDirectory(prefix="llm-stack-emulator-")
        self._ready_file = Path(self._tmp.name) / "ready.json"
        self._cmd = [sys.executable, "-m", "emulator.cli", "--engines", str(engines),
                     "--base-port", str(base_port), "--ready-file", str(self._ready_file), *args]
        self._timeout = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.urls: list[str] = []
        self.kv_events: list[str | None] = []
        """Each engine's KV-event PUB endpoint (with `--kv-events`), then `kv_replay` its ROUTER."""
        self.kv_replay: list[str | None] = []

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status once stopped (None while running or before start)."""
        return None if self._proc is None else self._proc.poll()

    def send_signal(self, sig: int) -> None:
        """Signal the running child (SIGTERM: drain as `--shutdown-timeout` says; SIGKILL: die)."""
        if self._proc is None:
            raise EmulatorError("emulator process is not running")
        self._proc.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        """The child's exit status, waiting up to `timeout_s` (subprocess.TimeoutExpired past it)."""
        if self._proc is None:
            raise EmulatorError("emulator process is not running")
        return self._proc.wait(timeout_s)

    def __enter__(self) -> EmulatorProcess:
        log = Path(self._tmp.name) / "stderr.log"
        with log.open("wb") as stderr:
            self._proc = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + self._timeout
        while not self._ready_file.exists():
            if self._proc.poll() is not None:
                err = log.read_text(errors="replace")
                self._tmp.cleanup()
                raise EmulatorError(f"emulator process exited with {self._proc.returncode}: {err.strip()}")
            if time.monotonic() > deadline:
                self.__exit__()
                raise EmulatorError(f"emulator process not ready within {self._timeout} s")
            time.sleep(0.02)  # polling a file with a deadline, not waiting blindly
        ready = json.loads(self._ready_file.read_text())
        self.urls = ready["urls"]
        self.kv_events, self.kv_replay = ready.get("kv_events", []), ready.get("kv_replay", [])
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(self._timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._tmp.cleanup()


def write_ready_file(path: str | os.PathLike[str], urls: list[str],
                     kv: dict[str, list[str | None]] | None = None) -> None:
    """Atomically write `{"urls": [...]}` and, with KV events, the `kv_events` and `kv_replay`
    endpoint lists (what `EmulatorProcess` waits for)."""
    target = Path(path)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps({"urls": urls, **(kv or {})}))
    tmp.replace(target)
