"""Every trigger query the stacks ship (the golden ScaledObjects) is valid PromQL to the real
Prometheus' own checker (`promtool check rules`, Debian's prometheus package), and names only
metrics of the shared contract."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

import contracts

ROOT = Path(__file__).resolve().parents[3]


def _shipped_queries() -> list[str]:
    queries = []
    for path in sorted((ROOT / "tests" / "golden").glob("*/kubernetes/*.scaledobject.*.yaml")):
        obj = yaml.safe_load(path.read_text())
        queries += [t["metadata"]["query"] for t in obj["spec"]["triggers"]]
    return queries


def test_promtool_accepts_every_shipped_trigger_query(tmp_path):
    """Each query, as a recording rule, passes `promtool check rules`."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make install`"
    queries = _shipped_queries()
    assert len(queries) >= 5  # dev (queue + demand), staging, prod (queue, queueTime)
    rules = {"groups": [{"name": "triggers", "rules": [
        {"record": f"llmstack:trigger_{i}", "expr": q} for i, q in enumerate(queries)]}]}
    path = tmp_path / "triggers.yaml"
    path.write_text(json.dumps(rules))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(queries)} rules found" in proc.stdout + proc.stderr


def test_queries_use_only_contract_metric_names():
    """No query retypes a metric name: every name it uses is one of `contracts`."""
    known = {v for k, v in vars(contracts).items()
             if k.startswith(("VLLM_", "ROUTER_", "KSM_")) and isinstance(v, str)}
    used = set()
    for query in _shipped_queries():
        used |= set(re.findall(r"(?:vllm:|llmstack_router_|kube_)[a-z_]+", query))
    bare = {re.sub(r"_(bucket|count)$", "", name) for name in used}
    assert used and bare <= known, bare - known
