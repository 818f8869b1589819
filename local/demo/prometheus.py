"""A real Prometheus on loopback, scraping the local stack the way the cluster's does: the
engines (job and `pod`/`namespace` labels as the PodMonitors give them), the router, each
engine's emulated dcgm-exporter series (`Hostname` = the node, `pod` = the engine using the
GPU) and, when given, a kube-state-metrics stand-in. Used by `make demo` and by the suite's
query proof (`local.demo.observed`).

`render_config` is pure; `PrometheusProcess` runs the `prometheus` binary (Debian's
`prometheus` package, which `make install` pulls in for promtool) with a throwaway storage
directory; `query` and `query_range` read its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts import DCGM_NODE_LABEL, JOB_ENGINES, JOB_ROUTER, PATH_METRICS
from local.procs import Processes, wait_http

ENGINE_JOB = JOB_ENGINES
ROUTER_JOB = JOB_ROUTER
DCGM_JOB = "dcgm-exporter"
KUBE_STATE_JOB = "kube-state-metrics"
DCGM_PATH = "/emulator/dcgm"
NAMESPACE = "llm-stack"


@dataclass(frozen=True, kw_only=True)
class ScrapeTargets:
    """What the local Prometheus scrapes."""

    engine_urls: Sequence[str]
    """Emulated engines (each also serves its GPU's series at `DCGM_PATH`)."""
    router_url: str
    """The router."""
    engine_nodes: Mapping[str, str] = field(default_factory=dict)
    """Engine URL -> node name (default: one node per engine, `node-<i>`)."""
    kube_state_url: str | None = None
    """The kube-state-metrics stand-in, if any."""
    namespace: str = NAMESPACE
    """The `namespace` label of engine and router targets."""

    def pod(self, index: int) -> str:
        """The pod name engine `index` is known by."""
        return f"engine-{index}"

    def node(self, index: int) -> str:
        """The node engine `index` runs on."""
        return self.engine_nodes.get(self.engine_urls[index], f"node-{index}")


def _hostport(url: str) -> str:
    return url.removeprefix("http://").removeprefix("https://").rstrip("/")


def _engine_groups(t: ScrapeTargets, with_node: bool) -> list[dict[str, Any]]:
    groups = []
    for i, url in enumerate(t.engine_urls):
        labels = {"pod": t.pod(i), "namespace": t.namespace}
        if with_node:
            labels[DCGM_NODE_LABEL] = t.node(i)
        groups.append({"targets": [_hostport(url)], "labels": labels})
    return groups


RULES_FILE = "rules.yml"


def render_config(targets: ScrapeTargets, interval_s: float = 1.0, with_rules: bool = False) -> str:
    """prometheus.yml for `targets` (JSON is valid YAML); `with_rules` loads `RULES_FILE` beside it."""
    def job(name: str, groups: list[dict[str, Any]], path: str = PATH_METRICS, **extra: Any) -> dict:
        return {"job_name": name, "metrics_path": path, "static_configs": groups, **extra}

    router_labels = {"pod": "router-0", "namespace": targets.namespace}
    jobs = [job(ENGINE_JOB, _engine_groups(targets, False)),
            job(ROUTER_JOB, [{"targets": [_hostport(targets.router_url)], "labels": router_labels}]),
            job(DCGM_JOB, _engine_groups(targets, True), DCGM_PATH, honor_labels=True)]
    if targets.kube_state_url:
        kube = [{"targets": [_hostport(targets.kube_state_url)]}]
        jobs.append(job(KUBE_STATE_JOB, kube, honor_labels=True))
    doc = {"global": {"scrape_interval": f"{interval_s:g}s", "evaluation_interval": f"{interval_s:g}s"},
           "scrape_configs": jobs}
    if with_rules:
        doc["rule_files"] = [RULES_FILE]
    return json.dumps(doc, indent=2)


def find_binary() -> str | None:
    """Path of the `prometheus` binary, or None when it is not installed."""
    return shutil.which("prometheus")


def _api(base_url: str, path: str, params: Mapping[str, Any]) -> Any:
    url = f"{base_url}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10.0) as resp:
        body = json.loads(resp.read())
    if body.get("status") != "success":
        raise RuntimeError(f"prometheus {path} {params}: {body}")
    return body["data"]


def query(base_url: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector (a PromQL error raises, naming the expression)."""
    return _api(base_url, "/api/v1/query", {"query": expr})["result"]


def query_range(base_url: str, expr: str, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
    """A range query's result matrix."""
    params = {"query": expr, "start": start, "end": end, "step": step_s}
    return _api(base_url, "/api/v1/query_range", params)["result"]


def rules(base_url: str) -> list[dict[str, Any]]:
    """The rule groups Prometheus loaded, with each rule's state."""
    return _api(base_url, "/api/v1/rules", {})["groups"]


def targets_seen_up(base_url: str) -> int:
    """How many scrape targets Prometheus saw up at least once in the last hour."""
    return sum(1 for r in query(base_url, "max_over_time(up[1h])") if r["value"][1] == "1")


class PrometheusProcess:
    """Prometheus on `127.0.0.1:port` with a throwaway storage directory."""

    def __init__(self, binary: str, procs: Processes, port: int) -> None:
        self.binary, self.procs, self.port = binary, procs, port
        self.url = f"http://127.0.0.1:{port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="llm-stack-prometheus-")
        self._proc: subprocess.Popen | None = None

    def start(self, config_text: str, ready_deadline_s: float = 30.0, rules_text: str | None = None) -> None:
        root = Path(self._tmp.name)
        (root / "prometheus.yml").write_text(config_text)
        if rules_text is not None:
            (root / RULES_FILE).write_text(rules_text)
        self._proc = self.procs.start("prometheus", [
            self.binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"])
        wait_http(f"{self.url}/-/ready", ready_deadline_s, self._proc)

    def stop(self) -> None:
        if self._proc is not None:
            self.procs.stop(self._proc)
            self._proc = None
        self._tmp.cleanup()
