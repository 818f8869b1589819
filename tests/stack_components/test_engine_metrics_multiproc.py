"""LMCache's counters, counted in an engine's worker processes, reach the API server's
/metrics: vLLM's own registry code (`.venv-engine`, the image's version) run with the rendered
container's environment, a worker process writing an LMCache counter, and the same check
without the variable showing it would be missing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

import contracts as c
from stack_components.engine_check import engine_python

ROOT = Path(__file__).resolve().parents[2]
VAR = "PROMETHEUS_MULTIPROC_DIR"
COUNTER = c.LMCACHE_HIT_TOKENS.removesuffix("_total")
# The API-server side is vLLM's get_prometheus_registry() and generate_latest, as its /metrics
# route serves it (vllm/entrypoints/serve/instrumentator/metrics.py); the worker side is a
# prometheus_client Counter, the class LMCache's PrometheusLogger uses (lmcache/observability.py).
PROBE = f"""
import multiprocessing, os, sys
def worker():
    import prometheus_client
    prometheus_client.Counter({COUNTER!r}, "hit tokens", ["model_name"]).labels("m").inc(256)
if __name__ == "__main__":
    p = multiprocessing.get_context("spawn").Process(target=worker)
    p.start(); p.join(timeout=60)
    assert p.exitcode == 0, p.exitcode
    from prometheus_client import generate_latest
    from vllm.v1.metrics.prometheus import get_prometheus_registry
    text = generate_latest(get_prometheus_registry()).decode()
    print({COUNTER!r} + '_total{{model_name="m"}} 256.0' in text)
"""


def _engine_containers() -> list[tuple[str, dict]]:
    found = []
    for path in sorted((ROOT / "tests" / "golden").glob("*/kubernetes/*.deployment.*.yaml")):
        pod = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]
        found += [(path.name, pod | {"container": ctr}) for ctr in pod["containers"] if ctr["name"] == "vllm"]
    return found


def _served(env: dict[str, str], tmp_path: Path) -> bool:
    python = engine_python(ROOT)
    if python is None:
        pytest.fail("the engine-check venv is missing: run `make install`")
    script = tmp_path / "probe.py"  # a file: spawned children re-import __main__
    script.write_text(PROBE)
    proc = subprocess.run([str(python), str(script)], env=env, capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1].lower())


def test_every_engine_sets_the_directory_on_its_own_volume():
    """Every rendered engine container sets PROMETHEUS_MULTIPROC_DIR to a mounted emptyDir."""
    containers = _engine_containers()
    for name, pod in containers:
        env = {e["name"]: e.get("value") for e in pod["container"]["env"]}
        mounts = {m["mountPath"]: m["name"] for m in pod["container"]["volumeMounts"]}
        assert env.get(VAR) in mounts, f"{name}: {VAR} is not a mounted volume"
        volume = next(v for v in pod["volumes"] if v["name"] == mounts[env[VAR]])
        assert "emptyDir" in volume, name
    assert len(containers) >= 4


def test_a_workers_lmcache_counter_reaches_metrics_only_with_the_variable(tmp_path):
    """With the rendered variable (pointing at a fresh directory, as the emptyDir is), vLLM's
    /metrics registry has the worker's LMCache counter; without it, it does not."""
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VLLM_TARGET_DEVICE": "cpu"}
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    assert _served(base | {VAR: str(metrics_dir)}, tmp_path) is True
    assert any(metrics_dir.iterdir())
    assert _served(base, tmp_path) is False
