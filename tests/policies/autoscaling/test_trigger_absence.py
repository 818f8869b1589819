"""The shipped trigger queries (the golden ScaledObjects) on the real Prometheus (`promtool
test rules`): a monitoring outage answers nothing (an error KEDA's fallback handles, with
`ignoreNullValues: false`), while a model legitimately at zero load answers 0 — idle engines,
zero engines, a router that has held nothing — and a held request at zero engines answers 1,
so scale-down and scale-from-zero keep working. `or vector(0)` read all of these as 0."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden"
DEV = GOLDEN / "dev" / "kubernetes" / "llm-stack.scaledobject.llm-llama3b.yaml"
PROD_70B = GOLDEN / "prod" / "kubernetes" / "llm-stack.scaledobject.llm-llama70b.yaml"


def _spec(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["spec"]


def _queries(path: Path) -> dict[str, str]:
    return {t["name"]: t["metadata"]["query"] for t in _spec(path)["triggers"]}


def _labels(spec: dict, path: Path) -> tuple[str, str, str]:
    """(model, namespace, deployment) as the golden names them."""
    doc = yaml.safe_load(path.read_text())
    query = _queries(path)
    model = next(iter(query.values())).split('model_name="', 1)[1].split('"', 1)[0]
    return model, doc["metadata"]["namespace"], spec["scaleTargetRef"]["name"]


def _series(path: Path, *, available: int | None, waiting: str | None, held: str | None,
            requests: str | None, queue_time: str | None) -> list[dict[str, str]]:
    """Input series for one situation (None: the source is not scraped)."""
    model, ns, dep = _labels(_spec(path), path)
    out: dict[str, str] = {'up{job="prometheus"}': "1x20"}  # Prometheus itself answers
    if available is not None:
        where = f'namespace="{ns}",deployment="{dep}"'
        out[f"kube_deployment_status_replicas_available{{{where}}}"] = f"{available}x20"
    if waiting is not None:
        for pod in ("e0", "e1"):
            out[f'vllm:num_requests_waiting{{model_name="{model}",pod="{pod}"}}'] = waiting
    if queue_time is not None:
        for le in ("0.3", "2.5", "+Inf"):
            out[f'vllm:request_queue_time_seconds_bucket{{model_name="{model}",le="{le}"}}'] = queue_time
        out[f'vllm:request_queue_time_seconds_count{{model_name="{model}"}}'] = queue_time
    if held is not None:
        out[f'llmstack_router_held_requests{{model="{model}",pod="router-0"}}'] = held
    if requests is not None:
        out[f'llmstack_router_requests_total{{model="{model}",engine="e0",status="200"}}'] = requests
    return [{"series": name, "values": values} for name, values in out.items()]


def _expect(query: str, value: float | None) -> dict:
    samples = [] if value is None else [{"labels": "{}", "value": value}]
    return {"expr": query, "eval_time": "10m", "exp_samples": samples}


SITUATIONS = {
    # name: (series kwargs, expected {trigger: value or None})
    "prometheus has nothing": (dict(available=None, waiting=None, held=None, requests=None, queue_time=None),
                               {"queue": None, "queuetime": None, "held": None, "demand": None}),
    "engines available, their scrape lost": (
        dict(available=2, waiting=None, held="0x20", requests=None, queue_time=None),
        {"queue": None, "queuetime": None, "held": 0, "demand": 0}),
    "router not scraped": (dict(available=2, waiting="0x20", held=None, requests=None, queue_time="0+0x20"),
                           {"queue": 0, "queuetime": 0, "held": None, "demand": None}),
    "idle engines": (dict(available=2, waiting="0x20", held="0x20", requests="5+0x20", queue_time="5+0x20"),
                     {"queue": 0, "queuetime": 0, "held": 0, "demand": 0}),
    "zero engines, nothing held": (
        dict(available=0, waiting=None, held="0x20", requests=None, queue_time=None),
        {"queue": 0, "queuetime": 0, "held": 0, "demand": 0}),
    # an engine still loading serves no HTTP: not scraped, not available
    "zero engines (or the first still loading), one request held": (
        dict(available=0, waiting=None, held="1x20", requests="0+1x20", queue_time=None),
        {"queue": 0, "queuetime": 0, "held": 1, "demand": 1 / 60}),
    "busy engines": (dict(available=2, waiting="3x20", held="0x20", requests="0+60x20", queue_time="0+60x20"),
                     {"queue": 6, "queuetime": 0.27, "held": 0, "demand": 1.0}),  # p90 in (0, 0.3]
}


def _promtool(tmp_path: Path, tests: list[dict]) -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make install`"
    (tmp_path / "rules.yaml").write_text(json.dumps({"groups": []}))
    (tmp_path / "tests.yaml").write_text(json.dumps({"rule_files": ["rules.yaml"], "tests": tests}))
    proc = subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("golden", [DEV, PROD_70B], ids=["dev-3b-from-zero", "prod-70b-queue-time"])
def test_absence_is_empty_and_zero_load_is_zero(tmp_path, golden):
    """Each trigger of the golden ScaledObject, in each situation, answers what KEDA must see."""
    queries = _queries(golden)
    tests, checked = [], 0
    for name, (kwargs, expected) in SITUATIONS.items():
        exprs = [_expect(queries[t], v) for t, v in expected.items() if t in queries]
        checked += len(exprs)
        tests.append({"name": name, "interval": "1m", "input_series": _series(golden, **kwargs),
                      "promql_expr_test": exprs})
    out = _promtool(tmp_path, tests)
    assert "SUCCESS" in out
    assert checked >= len(SITUATIONS)  # dev: queue, held, demand each; prod 70B: queuetime


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*/kubernetes/*.scaledobject.*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_trigger_errs_on_absence_and_falls_back_to_the_current_count(golden):
    """No trigger hides an empty answer (`ignoreNullValues` defaults to true in KEDA 2.20.2) or
    ends in `or vector(0)`; the fallback keeps the current replicas and is never 0 (at 0 KEDA's
    executor would scale a failing model to zero)."""
    spec = _spec(golden)
    assert spec["fallback"]["behavior"] == "currentReplicas"
    assert spec["fallback"]["replicas"] >= 1 and spec["fallback"]["failureThreshold"] >= 1
    for trigger in spec["triggers"]:
        assert trigger["metadata"]["ignoreNullValues"] == "false", trigger["name"]
        assert "vector(" not in trigger["metadata"]["query"], trigger["name"]
