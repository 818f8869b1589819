"""The closed loop's "Deployment": emulated engines started and stopped on demand, published
in a Prometheus file_sd-shaped targets file that the router and Prometheus both watch.

An engine counts toward the replica count as soon as it is started (as a pod does) but is
listed in the targets file only `load_delay_s` later (the model's load time); a removed
engine leaves the file first and stops `drain_s` later, so the router stops sending to it
before it goes. The file is replaced atomically (write, then rename)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from contracts import ENGINE_MODEL_LABEL
from emulator.config import EngineConfig
from emulator.server import EngineServer


def write_targets(path: Path, urls: Sequence[str], model: str) -> None:
    """Replace the targets file atomically (write, then rename) with one group listing `urls`
    (`host:port`, no scheme) labelled with the served model; no URL: an empty list."""
    groups = [{"targets": [u.removeprefix("http://") for u in urls],
               "labels": {ENGINE_MODEL_LABEL: model}}] if urls else []
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    os.replace(tmp, path)


@dataclass
class _Engine:
    server: EngineServer
    ready_at: float


class EnginePool:
    """Engines by URL; `scale_to(n, now)` and `tick(now)` drive it from the scaler's loop."""

    def __init__(self, config: EngineConfig, targets_file: Path, *, load_delay_s: float,
                 drain_s: float) -> None:
        self.config = config
        self.targets_file = targets_file
        self.load_delay_s = load_delay_s
        self.drain_s = drain_s
        self.engines: dict[str, _Engine] = {}
        self._leaving: list[tuple[float, EngineServer]] = []
        self._listed: tuple[str, ...] | None = None
        self.started = 0
        self.stopped = 0

    @property
    def replicas(self) -> int:
        """Engines started and not removed (ready or loading)."""
        return len(self.engines)

    @property
    def available(self) -> int:
        """Engines listed for discovery and scraping (loaded): kube-state-metrics' available
        replicas of the Deployment they stand for."""
        return len(self._listed or ())

    def ready(self, now: float) -> int:
        return sum(1 for e in self.engines.values() if e.ready_at <= now)

    async def scale_to(self, count: int, now: float, *, loaded: bool = False) -> None:
        """Start or remove engines until `count` run; the newest (loading first) go first.
        `loaded`: new engines are ready at once (those running before the run begins)."""
        while len(self.engines) < count:
            server = EngineServer(self.config)
            await server.start()
            self.engines[server.url] = _Engine(server, now if loaded else now + self.load_delay_s)
            self.started += 1
        while len(self.engines) > count:
            url = max(self.engines, key=lambda u: self.engines[u].ready_at)
            self._leaving.append((now + self.drain_s, self.engines.pop(url).server))
        self._publish(now)

    async def tick(self, now: float) -> None:
        """Publish engines that finished loading; stop drained ones."""
        self._publish(now)
        due = [s for at, s in self._leaving if at <= now]
        self._leaving = [(at, s) for at, s in self._leaving if at > now]
        for server in due:
            await server.stop()
            self.stopped += 1

    async def close(self) -> None:
        for _, server in self._leaving:
            await server.stop()
        for engine in self.engines.values():
            await engine.server.stop()
        self._leaving, self.engines = [], {}

    def _publish(self, now: float) -> None:
        listed = tuple(sorted(u for u, e in self.engines.items() if e.ready_at <= now))
        if listed == self._listed:
            return
        self._listed = listed
        write_targets(self.targets_file, listed, self.config.model)
