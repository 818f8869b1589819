"""Idle GPUs are not counted as in use: a real Prometheus scrapes a dcgm-exporter exposition
(one GPU mapped to an engine pod, one idle) through the shipped ServiceMonitor settings
(`honorLabels` and its relabelings, from `dcgm_exporter_values`), with the target labels the
operator gives the exporter pod; `{pod!=""}` then sees only the mapped GPU. The same scrape
without the relabelings shows the defect (the idle GPU gets the exporter's pod)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.demo.prometheus import PrometheusProcess, find_binary, query
from local.procs import free_ports, processes
from stack_components.common import Placement
from stack_components.monitoring.helm import dcgm_exporter_values
from tests.crd_schema import validate as validate_cr

# the exposition of dcgm-exporter 4.8.2 with pod mapping: only GPU 0 is used by a pod
# (internal/pkg/transformation/kubernetes.go sets pod/namespace/container on mapped GPUs only)
EXPOSITION = (
    '# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n'
    'DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="node-0",pod="engine-0",namespace="llm-stack",'
    'container="vllm"} 93\n'
    'DCGM_FI_DEV_GPU_UTIL{gpu="1",Hostname="node-0"} 0\n')
EXPORTER_TARGET = {"pod": "dcgm-exporter-x7k2p", "namespace": "monitoring", "container": "exporter"}


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        body = EXPOSITION.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _relabel_configs(relabelings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's translation of RelabelConfig (camelCase) into Prometheus' relabel_configs."""
    keys = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    return [{keys.get(k, k): v for k, v in r.items()} for r in relabelings]


def _config(port: int, monitor: dict[str, Any]) -> str:
    job = {"job_name": "dcgm-exporter", "scrape_interval": "1s", "honor_labels": monitor["honorLabels"],
           "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": EXPORTER_TARGET}],
           "relabel_configs": _relabel_configs(monitor.get("relabelings", []))}
    return json.dumps({"scrape_configs": [job]})


@pytest.fixture(scope="module")
def exporter_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _pods_seen(tmp_path, exporter_port: int, monitor: dict[str, Any]) -> dict[str, str | None]:
    binary = find_binary()
    if binary is None:
        pytest.fail("prometheus not installed: run `make install` (Debian package prometheus)")
    with processes(tmp_path) as procs:
        prom = PrometheusProcess(binary, procs, free_ports(1)[0])
        try:
            prom.start(_config(exporter_port, monitor))
            rows = _poll(prom.url, "DCGM_FI_DEV_GPU_UTIL")
        finally:
            prom.stop()
    return {r["metric"]["gpu"]: r["metric"].get("pod") for r in rows}


def _poll(url: str, expr: str, deadline_s: float = 30.0) -> list[dict[str, Any]]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        rows = query(url, expr)
        if len(rows) == 2:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{expr}: no two series within {deadline_s}s")


def test_idle_gpus_carry_no_pod_with_the_shipped_monitor(tmp_path, exporter_port) -> None:
    """With the shipped settings the mapped GPU keeps its engine pod and the idle one has none."""
    monitor = dcgm_exporter_values(Placement(), 15)["serviceMonitor"]
    assert _pods_seen(tmp_path, exporter_port, monitor) == {"0": "engine-0", "1": None}


def test_without_the_relabelings_the_idle_gpu_takes_the_exporters_pod(tmp_path, exporter_port) -> None:
    """The control: honorLabels alone gives the idle GPU the exporter pod's name (the defect)."""
    monitor = {**dcgm_exporter_values(Placement(), 15)["serviceMonitor"], "relabelings": []}
    assert _pods_seen(tmp_path, exporter_port, monitor) == {"0": "engine-0", "1": "dcgm-exporter-x7k2p"}


def test_the_charts_service_monitor_validates_against_its_crd() -> None:
    """The ServiceMonitor the dcgm-exporter chart renders from these values (its
    templates/service-monitor.yaml at 4.8.2) passes the pinned CRD's strict schema."""
    values = dcgm_exporter_values(Placement(), 15)["serviceMonitor"]
    endpoint = {"port": "metrics", "path": "/metrics", "interval": values["interval"], "scrapeTimeout": "10s",
                "honorLabels": values["honorLabels"], "relabelings": values["relabelings"],
                "metricRelabelings": []}
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "dcgm-exporter", "namespace": "monitoring"},
               "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "dcgm-exporter"}},
                        "namespaceSelector": {"matchNames": ["monitoring"]}, "endpoints": [endpoint]}}
    assert validate_cr(monitor) == 0
