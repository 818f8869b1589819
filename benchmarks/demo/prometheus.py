"""A real Prometheus for the demo, when the `prometheus` binary is installed (Debian's
`prometheus` package, which `make install` pulls in for promtool).

`render_config` is pure: one scrape job for the engines and one for the router, loopback
targets, a 1 s interval. `PrometheusProcess` runs it with its storage in a temporary
directory and stops it at the end (SIGTERM, then SIGKILL); `targets_seen_up` asks its HTTP API
how many targets answered, so the demo can say the scrape really happened."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from benchmarks.router_bench.procs import Processes, wait_http

ENGINE_JOB = "llm-stack-engines"
ROUTER_JOB = "llm-stack-router"


def find_binary() -> str | None:
    """Path of the `prometheus` binary, or None when it is not installed."""
    return shutil.which("prometheus")


def _hostport(url: str) -> str:
    return url.removeprefix("http://").removeprefix("https://").rstrip("/")


def render_config(engine_urls: Sequence[str], router_url: str, interval_s: float = 1.0) -> str:
    """prometheus.yml scraping every engine and the router (JSON is valid YAML)."""
    def job(name: str, urls: Sequence[str]) -> dict:
        return {"job_name": name, "metrics_path": "/metrics",
                "static_configs": [{"targets": [_hostport(u) for u in urls]}]}

    doc = {"global": {"scrape_interval": f"{interval_s:g}s", "evaluation_interval": f"{interval_s:g}s"},
           "scrape_configs": [job(ENGINE_JOB, engine_urls), job(ROUTER_JOB, [router_url])]}
    return json.dumps(doc, indent=2)


def targets_seen_up(base_url: str) -> int:
    """How many scrape targets Prometheus saw up at least once in the last hour."""
    query = urllib.parse.quote("max_over_time(up[1h])")
    with urllib.request.urlopen(f"{base_url}/api/v1/query?query={query}", timeout=5.0) as resp:
        data = json.loads(resp.read())
    return sum(1 for r in data["data"]["result"] if r["value"][1] == "1")


class PrometheusProcess:
    """Prometheus on `127.0.0.1:port` with a throwaway storage directory."""

    def __init__(self, binary: str, procs: Processes, port: int) -> None:
        self.binary, self.procs, self.port = binary, procs, port
        self.url = f"http://127.0.0.1:{port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="llm-stack-prometheus-")
        self._proc: subprocess.Popen | None = None

    def start(self, config_text: str, ready_deadline_s: float = 30.0) -> None:
        root = Path(self._tmp.name)
        (root / "prometheus.yml").write_text(config_text)
        self._proc = self.procs.start("prometheus", [
            self.binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"])
        wait_http(f"{self.url}/-/ready", ready_deadline_s, self._proc)

    def stop(self) -> None:
        if self._proc is not None:
            self.procs.stop(self._proc)
            self._proc = None
        self._tmp.cleanup()
