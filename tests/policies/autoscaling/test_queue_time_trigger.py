"""The prod 70B trigger (the golden ScaledObject's query and threshold) under `promtool test
rules`: long uncached prompts at an empty queue (TTFT ~5 s) leave it under its threshold; the
same TTFT with requests waiting 1-2.5 s to be scheduled crosses it. A TTFT trigger would have
scaled on both."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "prod" / "kubernetes" / "llm-stack.scaledobject.llm-llama70b.yaml"
MODEL = "meta-llama/Llama-3.1-70B-Instruct"


def _trigger() -> tuple[str, float]:
    triggers = yaml.safe_load(GOLDEN.read_text())["spec"]["triggers"]
    (load,) = [t for t in triggers if t["name"] == "queuetime"]
    return load["metadata"]["query"], float(load["metadata"]["threshold"])


def _series(queue_slow: bool) -> list[dict[str, str]]:
    ttft = f'vllm:time_to_first_token_seconds_bucket{{model_name="{MODEL}",le="%s"}}'
    wait = f'vllm:request_queue_time_seconds_bucket{{model_name="{MODEL}",le="%s"}}'
    series = {ttft % "1": "0+0x20", ttft % "5": "0+10x20", ttft % "+Inf": "0+10x20",
              wait % "0.3": "0+0x20" if queue_slow else "0+10x20", wait % "2.5": "0+10x20",
              wait % "+Inf": "0+10x20"}
    return [{"series": name, "values": values} for name, values in series.items()]


def test_the_trigger_moves_with_queueing_not_with_prompt_length(tmp_path):
    """Over its threshold only when requests queue; quiet for slow long prefills alone."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make install`"
    query, threshold = _trigger()
    rule = {"alert": "ScaleUp", "expr": f"({query}) > {threshold:g}"}
    (tmp_path / "rules.yaml").write_text(json.dumps({"groups": [{"name": "t", "rules": [rule]}]}))
    cases = [(True, [{"exp_labels": {}}]), (False, [])]
    tests = [{"interval": "1m", "input_series": _series(slow),
              "alert_rule_test": [{"eval_time": "10m", "alertname": "ScaleUp", "exp_alerts": exp}]}
             for slow, exp in cases]
    (tmp_path / "tests.yaml").write_text(json.dumps({"rule_files": ["rules.yaml"], "tests": tests}))
    proc = subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout and threshold == 1.0
