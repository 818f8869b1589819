"""An observed local stack for proving PromQL: emulated engines (child process), the real
router (child process), a kube-state-metrics stand-in, and a real Prometheus scraping all of
them every second; `drive` sends a bounded load through the router so every counter and
histogram moves. Reusable by any test that must evaluate a query on live data:

    with observed_stack(tmp_path, pools={"a100": 8, "system": 0}) as stack:
        stack.drive(requests=24)
        stack.wait_for("sum(rate(vllm:prompt_tokens_total[5m])) > 0", deadline_s=20)
        rows = stack.query("...")

Everything listens on 127.0.0.1, is bounded in count and time, and stops on exit."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import HEADER_USER_ID, PATH_CHAT, ROUTER_REQUESTS
from local.demo import prometheus
from local.demo.errors import DemoError
from local.demo.kube_state import KubeStateServer, render
from local.procs import Processes, free_ports, processes, wait_http

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
NODE_POOL_LABEL = "llmstack.io/node-pool"
_EMULATOR_FLAGS = ("--gpu-cache-tokens", "20000", "--cpu-cache-tokens", "40000", "--time-scale", "0.05")


@dataclass
class ObservedStack:
    """Handles on the running stack."""

    prometheus_url: str
    router_url: str
    engine_urls: list[str]
    namespace: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query on the live Prometheus."""
        return prometheus.query(self.prometheus_url, expr)

    def wait_for(self, expr: str, deadline_s: float = 30.0, poll_s: float = 0.5) -> list[dict[str, Any]]:
        """Poll until `expr` returns data; raise `DemoError` at the deadline."""
        end = time.monotonic() + deadline_s
        while True:
            rows = self.query(expr)
            if rows or time.monotonic() > end:
                break
            time.sleep(poll_s)
        if not rows:
            raise DemoError(f"no data for {expr!r} within {deadline_s:g}s")
        return rows

    def load(self, rounds: int = 2, requests: int = 16, deadline_s: float = 30.0) -> int:
        """Every target scraped, then `rounds` of load, each scraped before the next, so counters
        are seen before and after they move (a rate needs two samples); returns answers with 200."""
        self.wait_for('min(up) == 1 and count(up) >= 4', deadline_s)
        ok = 0
        for n in range(1, rounds + 1):
            ok += self.drive(requests=requests)
            self.wait_for(f"sum({ROUTER_REQUESTS}) >= {ok}", deadline_s)
            if n == 1:
                continue
            self.wait_for(f"sum(rate({ROUTER_REQUESTS}[5m])) > 0", deadline_s)
        return ok

    def rule_groups(self) -> list[dict[str, Any]]:
        """The rule groups Prometheus loaded (its `/api/v1/rules`)."""
        return prometheus.rules(self.prometheus_url)

    def set_faults(self, engine: int, faults: Mapping[str, Any]) -> None:
        """Replace engine `engine`'s emulated fault set (`{}` clears it)."""
        url = f"{self.engine_urls[engine]}/emulator/faults"
        req = urllib.request.Request(url, data=json.dumps(faults).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10.0) as resp:
            resp.read()

    def drive(self, requests: int = 24, users: int = 6, concurrency: int = 4, max_tokens: int = 12) -> int:
        """Send `requests` streamed chats through the router (users repeat, so prefixes hit);
        returns how many answered 200."""
        def one(i: int) -> int:
            user = f"user-{i % users}"
            body = {"model": MODEL, "stream": True, "max_tokens": max_tokens,
                    "messages": [{"role": "system", "content": "You are a careful assistant. " * 40},
                                 {"role": "user", "content": f"{user} asks question {i // users}"}]}
            req = urllib.request.Request(f"{self.router_url}{PATH_CHAT}", data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json", HEADER_USER_ID: user})
            with urllib.request.urlopen(req, timeout=30.0) as resp:
                resp.read()
                return resp.status

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return sum(status == 200 for status in pool.map(one, range(requests)))


def _kube_state(engines: int, pools: Mapping[str, int], namespace: str) -> str:
    gpu_pools = [p for p, gpus in pools.items() if gpus] or ["gpu"]
    nodes = {f"node-{i}": gpu_pools[0] for i in range(engines)}
    nodes |= {f"{p}-node-0": p for p in pools if p not in gpu_pools}
    pods = {f"engine-{i}": "Running" for i in range(engines)}
    return render(nodes, pods, namespace, NODE_POOL_LABEL)


def _router_argv(urls: list[str], port: int) -> list[str]:
    llm_stack = str(Path(sys.executable).with_name("llm-stack"))
    return [llm_stack, "router", "--engines", ",".join(urls), "--model", MODEL, "--policy", "prefix",
            "--host", "127.0.0.1", "--port", str(port), "--engine-capacity-tokens", "20000"]


@contextlib.contextmanager
def observed_stack(workdir: Path, *, engines: int = 2, pools: Mapping[str, int] | None = None,
                   namespace: str = prometheus.NAMESPACE,
                   rule_groups: list[dict[str, Any]] | None = None) -> Iterator[ObservedStack]:
    """Start everything, yield the handles, stop everything. `pools`: pool name -> GPUs per
    node (the engines' nodes join the first GPU pool); `rule_groups`: alerting/recording rules
    Prometheus evaluates (read back as `ALERTS`)."""
    from emulator.runner import EmulatorProcess

    binary = prometheus.find_binary()
    if binary is None:
        raise DemoError("the prometheus binary is not installed (apt-get install prometheus)")
    kube = KubeStateServer(_kube_state(engines, pools or {"gpu": 8}, namespace))
    router_port, prom_port = free_ports(2)
    with EmulatorProcess(engines=engines, base_port=0, args=["--model", MODEL, *_EMULATOR_FLAGS]) as emu, \
            processes(workdir / "logs") as procs:
        kube.start()
        prom = prometheus.PrometheusProcess(binary, procs, prom_port)
        try:
            yield _start(procs, prom, emu.urls, kube.url, router_port, namespace, rule_groups)
        finally:
            prom.stop()
            kube.stop()


def _start(procs: Processes, prom: prometheus.PrometheusProcess, urls: list[str], kube_url: str,
           router_port: int, namespace: str, rule_groups: list[dict[str, Any]] | None) -> ObservedStack:
    router = procs.start("router", _router_argv(urls, router_port))
    router_url = f"http://127.0.0.1:{router_port}"
    wait_http(f"{router_url}/health", 30.0, router)
    targets = prometheus.ScrapeTargets(engine_urls=urls, router_url=router_url, kube_state_url=kube_url,
                                       namespace=namespace)
    rules = None if rule_groups is None else json.dumps({"groups": rule_groups})
    prom.start(prometheus.render_config(targets, with_rules=rules is not None), rules_text=rules)
    return ObservedStack(prometheus_url=prom.url, router_url=router_url, engine_urls=list(urls),
                         namespace=namespace)
