"""The demo's I/O shell: for each policy, fresh emulated engines (a child process, so caches
start cold), our router (a child process), the multi-round QA sweep from this process; a
real Prometheus across the whole run when installed. Everything listens on loopback, is
bounded by the plan's durations and deadlines, and is stopped on exit, Ctrl-C included.

Engines and router keep the same ports for every policy, so one Prometheus config covers
the whole run."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from local.demo import prometheus
from local.demo.dashboard_png import write_dashboard_png
from local.demo.errors import DemoError
from local.demo.plan import DemoPlan, capacity, emulator_flags
from local.procs import BenchError, Processes, free_ports, processes, wait_http

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DASHBOARD_PNG = "dashboard.png"
_ROUTER_READY_S = 30.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, kw_only=True)
class Ports:
    """Loopback ports kept for the whole demo."""

    engine_base: int
    engines: int
    router: int
    prometheus: int

    @property
    def engine_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.engine_base + i}" for i in range(self.engines)]

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router}"


def _free_range(count: int, attempts: int = 50) -> int:
    """The first of `count` consecutive free loopback ports."""
    for _ in range(attempts):
        base = free_ports(1)[0]
        if base + count >= 65535:
            continue
        socks = [socket.socket() for _ in range(count)]
        try:
            for i, s in enumerate(socks):
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise DemoError(f"no {count} consecutive free loopback ports after {attempts} attempts")


def pick_ports(engines: int) -> Ports:
    """Ports for the engines (consecutive, as the emulator takes a base port), router, Prometheus."""
    base = _free_range(engines)
    taken = set(range(base, base + engines))
    router, prom = _two_more(taken)
    return Ports(engine_base=base, engines=engines, router=router, prometheus=prom)


def _two_more(taken: set[int]) -> tuple[int, int]:
    ports = [p for p in free_ports(6) if p not in taken]
    if len(ports) < 2:
        raise DemoError("no free loopback ports for the router and Prometheus")
    return ports[0], ports[1]


def _router_argv(plan: DemoPlan, policy: str, ports: Ports, workdir: Path) -> list[str]:
    cap = capacity(plan)
    config = workdir / "router.json"
    # The emulator's CPU tier is exclusive (GPU evictions move there) where LMCache's writes
    # through; the router models write-through (distinct = max of the tiers), so it is told
    # the emulated engine's whole distinct capacity as its CPU tier.
    config.write_text(json.dumps({"default_cpu_cache_tokens": cap.total_tokens, "log_level": "warning"}))
    llm_stack = str(Path(sys.executable).with_name("llm-stack"))
    return [llm_stack, "router", "--config", str(config), "--engines", ",".join(ports.engine_urls),
            "--model", MODEL, "--policy", policy, "--host", "127.0.0.1", "--port", str(ports.router),
            "--engine-capacity-tokens", str(cap.gpu_tokens)]


def _bench_config(plan: DemoPlan, policy: str, ports: Ports, qps: tuple[float, ...], duration_s: float):
    from bench import BenchConfig

    return BenchConfig(
        base_url=ports.router_url, model=MODEL, users=plan.users, rounds=plan.rounds,
        system_prompt_tokens=plan.system_prompt_tokens, history_tokens=plan.history_tokens,
        question_tokens=plan.question_tokens, answer_tokens=plan.answer_tokens, qps=qps,
        duration_s=duration_s, drain_s=plan.drain_s, seed=plan.seed, label=policy,
        metrics_urls=tuple(f"{u}/metrics" for u in ports.engine_urls),
        request_timeout_s=duration_s + plan.drain_s + 30.0,
    )


async def _sweep(plan: DemoPlan, policy: str, ports: Ports):
    """The QPS points in order, each run on its own so the benchmark's warm-up (each initial
    user's history sent once, unmeasured, as the original's run.sh does) precedes every point,
    not only the first; one combined result."""
    from bench import run_benchmark

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = _STOP_SIGNALS if threading.current_thread() is threading.main_thread() else ()
    for sig in signals:  # the benchmark returns what it has on `stop`; the demo then ends
        loop.add_signal_handler(sig, stop.set)
    try:
        results = []
        for q, d in zip(plan.qps, plan.durations_s, strict=True):
            results.append(await run_benchmark(_bench_config(plan, policy, ports, (q,), d), stop=stop))
            if stop.is_set():
                raise KeyboardInterrupt
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    config = dataclasses.replace(results[0].config, qps=plan.qps, durations_s=plan.durations_s)
    return dataclasses.replace(results[0], config=config,
                               points=tuple(p for r in results for p in r.points))


@contextlib.contextmanager
def _engines(plan: DemoPlan, ports: Ports) -> Iterator[list[str]]:
    from emulator.errors import EmulatorError
    from emulator.runner import EmulatorProcess

    try:
        with EmulatorProcess(engines=plan.engines, base_port=ports.engine_base,
                             args=["--model", MODEL, *emulator_flags(plan)]) as emu:
            yield emu.urls
    except EmulatorError as exc:
        raise DemoError(f"emulated engines: {exc}") from exc


def run_policy(plan: DemoPlan, policy: str, ports: Ports, procs: Processes, run_dir: Path):
    """One policy's sweep on fresh engines and a fresh router; writes `run_dir`; returns the
    `bench` result."""
    from bench import write_report

    with _engines(plan, ports):
        router = procs.start(f"router-{policy}", _router_argv(plan, policy, ports, procs.log_dir))
        try:
            wait_http(f"{ports.router_url}/health", _ROUTER_READY_S, router)
            result = asyncio.run(_sweep(plan, policy, ports))
        except BenchError as exc:
            raise DemoError(f"router ({policy}): {exc}; see {procs.log_dir}") from exc
        finally:
            procs.stop(router)
    write_report(result, run_dir)
    return result


@contextlib.contextmanager
def _prometheus(procs: Processes, ports: Ports, say: Callable[[str], None]
                ) -> Iterator[prometheus.PrometheusProcess | None]:
    binary = prometheus.find_binary()
    if binary is None:
        say("prometheus not installed: running without it (apt-get install prometheus to add it)")
        yield None
        return
    prom = prometheus.PrometheusProcess(binary, procs, ports.prometheus)
    try:
        prom.start(prometheus.render_config(prometheus.ScrapeTargets(engine_urls=ports.engine_urls,
                                                                     router_url=ports.router_url)))
        say(f"prometheus scraping engines and router at {prom.url}")
        yield prom
    finally:
        prom.stop()


def run_all(plan: DemoPlan, out: Path, say: Callable[[str], None]) -> tuple[dict, float, str | None]:
    """Every policy in turn. Returns {policy: [PointStats dict]}, wall seconds, and a line on
    Prometheus (None when it did not run)."""
    began = time.monotonic()
    ports = pick_ports(plan.engines)
    main = threading.current_thread() is threading.main_thread()  # signals only work there
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        stats, prom_note = _policies(plan, ports, out, say)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    return stats, time.monotonic() - began, prom_note


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _policies(plan: DemoPlan, ports: Ports, out: Path, say: Callable[[str], None]) -> tuple[dict, str | None]:
    stats: dict[str, list[dict]] = {}
    prom_note = None
    began = time.time()
    with processes(out / "logs") as procs, _prometheus(procs, ports, say) as prom:
        for policy in plan.policies:
            sweep = ", ".join(f"{q:g}" for q in plan.qps)
            say(f"{policy}: {plan.engines} fresh engines, router, QPS sweep {sweep} ...")
            result = run_policy(plan, policy, ports, procs, out / "runs" / policy)
            stats[policy] = [p.stats.to_dict() for p in result.points]
        if prom is not None:
            prom_note = f"{prom.url}: {prometheus.targets_seen_up(prom.url)} targets scraped successfully"
            drawn = write_dashboard_png(prom.url, began, time.time(), out / DASHBOARD_PNG)
            say(f"dashboard picture: {out / DASHBOARD_PNG} ({drawn} panels with data)")
    return stats, prom_note
