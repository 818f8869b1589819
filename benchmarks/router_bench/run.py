"""Executes a `Plan`: fake engines, each router in turn, the load generator per scenario,
CPU and RSS read from /proc around each load. Everything on loopback, bounded by counts and
deadlines, and every child stopped on exit (`procs.processes`)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from benchmarks.router_bench.plan import Plan, Scenario
from benchmarks.router_bench.routers import RouterSpec
from benchmarks.router_bench.stats import LoadResult
from local.procs import BenchError, Processes, cpu_seconds, free_ports, rss_bytes, wait_http

DIRECT = "direct"


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One scenario against one target in one repeat."""

    target: str
    scenario: str
    repeat: int
    load: LoadResult
    router_cpu_s: float
    engine_cpu_s: float
    placements: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class MemoryPoint:
    """Router RSS after `prompts` distinct prompts went through it."""

    target: str
    prompts: int
    rss_bytes: int
    errors: int


@dataclass
class Results:
    measurements: list[Measurement] = field(default_factory=list)
    memory: list[MemoryPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _get(url: str, method: str = "GET") -> bytes:
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=5.0) as resp:
        return resp.read()


class Bench:
    """The I/O shell around a `Plan`."""

    def __init__(self, plan: Plan, procs: Processes) -> None:
        self.plan = plan
        self.procs = procs
        self.engine_urls: list[str] = []
        self.engine_pid = 0

    def start_engines(self) -> None:
        ports = free_ports(self.plan.engines)
        self.engine_urls = [f"http://127.0.0.1:{p}" for p in ports]
        proc = self.procs.start("fake-engines", [
            sys.executable, "-m", "benchmarks.router_bench.fake_engine",
            "--ports", ",".join(map(str, ports)), "--token-gap-ms", str(self.plan.token_gap_ms)])
        for url in self.engine_urls:
            wait_http(url + "/health", self.plan.ready_deadline_s, proc)
        self.engine_pid = proc.pid

    def _loadgen_argv(self, url: str, s: Scenario, prompts: str, start: int) -> list[str]:
        p = self.plan
        argv = [sys.executable, "-m", "benchmarks.router_bench.loadgen", "--url", url, "-n", str(s.n),
                "-c", str(s.c), "--max-tokens", str(p.max_tokens), "--prompt-bytes", str(p.prompt_bytes),
                "--conversations", str(p.conversations), "--prompts", prompts, "--start", str(start),
                "--wait-go"]
        return argv + (["--stream"] if s.stream else [])

    def load(self, url: str, s: Scenario, router_pid: int | None, prompts: str = "conversations",
             start: int = 0, timeout_s: float | None = None) -> tuple[LoadResult, float, float]:
        """One load-generator run; returns its result and the router's and engines' CPU seconds."""
        gen = subprocess.Popen(self._loadgen_argv(url, s, prompts, start), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            if gen.stdout.readline().strip() != b"ready":
                raise BenchError(f"load generator did not start: {gen.stderr.read()[-2000:]!r}")
            r0, e0 = (cpu_seconds(router_pid) if router_pid else 0.0), cpu_seconds(self.engine_pid)
            limit = timeout_s or self.plan.loadgen_timeout_s
            try:
                out, err = gen.communicate(b"go\n", timeout=limit)
            except subprocess.TimeoutExpired:
                raise BenchError(f"load generator ({s.n} requests at c={s.c}) did not finish within "
                                 f"{limit:.0f} s") from None
            r1, e1 = (cpu_seconds(router_pid) if router_pid else 0.0), cpu_seconds(self.engine_pid)
        finally:
            if gen.poll() is None:
                gen.kill()
                gen.wait()
        if gen.returncode != 0:
            raise BenchError(f"load generator failed ({gen.returncode}): {err[-2000:]!r}")
        return LoadResult.from_dict(orjson.loads(out.splitlines()[-1])), r1 - r0, e1 - e0

    def placements(self, reset: bool = False) -> dict[str, dict[str, int]]:
        """Requests per conversation on each engine (and optionally reset the counters)."""
        method = "DELETE" if reset else "GET"
        return {url: orjson.loads(_get(url + "/stats", method)) for url in self.engine_urls}

    def start_router(self, spec: RouterSpec) -> tuple[str, subprocess.Popen]:
        port, metrics_port = free_ports(2)
        workdir = self.procs.log_dir
        for name, text in spec.files:
            (workdir / name).write_text(text)
        argv = spec.argv(self.engine_urls, port, metrics_port, workdir)
        env = {**os.environ, **spec.environ(self.engine_urls, workdir)} if spec.environ else None
        proc = self.procs.start(spec.name.replace(" ", "-"), argv, env=env)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + spec.health_path, self.plan.ready_deadline_s, proc)
        return url, proc

    def _scenarios(self, target: str, url: str, pid: int | None, repeat: int) -> list[Measurement]:
        warm = Scenario(name="warmup", n=self.plan.warmup, c=min(4, self.plan.warmup))
        self.load(url, warm, pid)
        out = []
        for s in self.plan.scenarios:
            self.placements(reset=True)
            load, router_cpu, engine_cpu = self.load(url, s, pid)
            out.append(Measurement(target=target, scenario=s.name, repeat=repeat, load=load,
                                   router_cpu_s=router_cpu, engine_cpu_s=engine_cpu,
                                   placements=self.placements()))
        return out

    def run_direct(self, repeat: int) -> list[Measurement]:
        """The scenarios straight at the first engine: the baseline latency and engine cost."""
        return self._scenarios(DIRECT, self.engine_urls[0], None, repeat)

    def run_router(self, spec: RouterSpec, repeat: int) -> list[Measurement]:
        """A fresh router process through every scenario."""
        url, proc = self.start_router(spec)
        try:
            return self._scenarios(spec.name, url, proc.pid, repeat)
        finally:
            self.procs.stop(proc)

    def run_memory(self, spec: RouterSpec) -> list[MemoryPoint]:
        """RSS of a fresh router at start and after each checkpoint of distinct prompts."""
        url, proc = self.start_router(spec)
        try:
            points = [MemoryPoint(target=spec.name, prompts=0, rss_bytes=rss_bytes(proc.pid), errors=0)]
            sent = 0
            for checkpoint in self.plan.memory_checkpoints:
                s = Scenario(name="memory", n=checkpoint - sent, c=self.plan.memory_concurrency)
                load, _, _ = self.load(url, s, proc.pid, prompts="distinct", start=sent,
                                       timeout_s=self.plan.memory_timeout_for(s.n))
                sent = checkpoint
                points.append(MemoryPoint(target=spec.name, prompts=sent, rss_bytes=rss_bytes(proc.pid),
                                          errors=load.errors))
            return points
        finally:
            self.procs.stop(proc)


def execute(plan: Plan, procs: Processes, specs: list[RouterSpec], memory_specs: list[RouterSpec],
            progress=print) -> Results:
    """Run every spec `plan.repeats` times, interleaved (so slow drifts in machine load hit
    all routers alike), then the memory phase."""
    bench = Bench(plan, procs)
    bench.start_engines()
    results = Results()
    for repeat in range(plan.repeats if specs else 0):
        progress(f"repeat {repeat + 1}/{plan.repeats}: {DIRECT}")
        results.measurements += bench.run_direct(repeat)
        for spec in specs:
            progress(f"repeat {repeat + 1}/{plan.repeats}: {spec.name}")
            results.measurements += bench.run_router(spec, repeat)
    for spec in memory_specs:
        progress(f"memory: {spec.name}")
        results.memory += bench.run_memory(spec)
    return results


def save(results: Results, path: Path) -> None:
    """Raw results as JSON (every measurement, for later analysis)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


def load_results(path: Path) -> Results:
    """Read `save`'s JSON back."""
    raw = orjson.loads(path.read_bytes())
    ms = [Measurement(**{**m, "load": LoadResult.from_dict(m["load"])}) for m in raw["measurements"]]
    return Results(measurements=ms, memory=[MemoryPoint(**m) for m in raw["memory"]], notes=raw["notes"])
