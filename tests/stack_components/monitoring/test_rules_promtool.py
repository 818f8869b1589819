"""The alert rules under Prometheus' own tools: `promtool check rules` on the shipped rule file
(PromQL and annotation templates), and `promtool test rules` with synthetic series for every
alert — each fires on its condition, after its `for`, with the labels an operator routes on,
and stays quiet on a healthy series."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stack_components.monitoring.rules import AlertRule, RuleObjectives, alert_rules, rule_groups

OBJECTIVES = RuleObjectives(ttft_p95_seconds=2.0, max_waiting_per_engine=32, engine_namespace="llm-stack",
                            pool_max_nodes={"a100": 2}, lora=True)
UP = 'up{job="llm-stack-engines",pod="e0"}'
ENGINE = {"job": "llm-stack-engines", "pod": "e0"}
POOL = "label_llmstack_io_node_pool"
XID = 'DCGM_FI_DEV_XID_ERRORS{Hostname="n0",gpu="3"}'
GPU3 = {"Hostname": "n0", "gpu": "3"}


def _ttft_slow() -> dict[str, str]:
    """Every first token between 1 and 5 s (p95 ~4.8 s, above the 2 s objective)."""
    b = 'vllm:time_to_first_token_seconds_bucket{model_name="m",le="%s"}'
    return {b % "1": "0+0x20", b % "5": "0+10x20", b % "+Inf": "0+10x20"}


def _queue_time(*, slow: bool) -> dict[str, str]:
    """Queue time: 1-2.5 s for every request (slow), or under 0.3 s (an empty queue)."""
    b = 'vllm:request_queue_time_seconds_bucket{model_name="m",le="%s"}'
    return {b % "0.3": "0+0x20" if slow else "0+10x20", b % "1": "0+0x20" if slow else "0+10x20",
            b % "2.5": "0+10x20", b % "+Inf": "0+10x20"}

def _lora(*, waiting_newest: bool) -> dict[str, str]:
    """vLLM's lora_requests_info as prometheus_client exports it: every label set ever set, each
    valued at the time it was last the state (seconds). Either the state with `sql,legal` waiting
    is the newest (set every minute), or it is an old one (frozen) and an empty queue is newest."""
    info = ('vllm:lora_requests_info{namespace="llm-stack",pod="e0",max_lora="2",'
            'running_lora_adapters="sql,chat",waiting_lora_adapters="%s"}')
    newest, old = "1000+60x30", "900x30"
    return {info % "sql,legal": newest if waiting_newest else old,
            info % "": old if waiting_newest else newest}


# alert -> (input series, eval time, labels of the expected alert besides severity, healthy series)
CASES: dict[str, tuple[dict[str, str], str, list[dict[str, str]], dict[str, str]]] = {
    # served, then stopped answering: pages; a pod still loading its weights (never up) does not
    "LLMEngineDown": ({UP: "1 1 1 0 0 0 0 0 0 0"}, "7m", [ENGINE], {UP: "0x10"}),
    "LLMEngineFlapping": ({UP: "1 0 1 0 1 1 1 1"}, "6m", [ENGINE], {UP: "1x10"}),
    "LLMRequestsQueueing": ({'vllm:num_requests_waiting{model_name="m",pod="e0"}': "40x10"}, "7m",
                            [{"model_name": "m", "pod": "e0"}],
                            {'vllm:num_requests_waiting{model_name="m",pod="e0"}': "3x10"}),
    # slow first tokens while requests queue: fires; as slow from long prompts at an empty queue: quiet
    "LLMTimeToFirstTokenHigh": (
        {**_ttft_slow(), **_queue_time(slow=True)}, "16m", [{"model_name": "m"}],
        {**_ttft_slow(), **_queue_time(slow=False)}),
    # adapters waiting in the engine's newest LoRA state for 10m: fires; only in an older state: quiet
    "LLMLoraAdaptersWaiting": (_lora(waiting_newest=True), "12m", [{"namespace": "llm-stack", "pod": "e0"}],
                               _lora(waiting_newest=False)),
    "LLMKVCacheSaturated": (
        {'vllm:kv_cache_usage_perc{model_name="m",pod="e0"}': "0.99x20",
         'vllm:gpu_cache_usage_perc{model_name="m",pod="e1"}': "0.97x20"},
        "15m", [{"model_name": "m", "pod": "e0"}, {"model_name": "m", "pod": "e1"}],
        {'vllm:kv_cache_usage_perc{model_name="m",pod="e0"}': "0.6x20"}),
    "LLMPrefixCacheHitRateCollapsed": (
        {'vllm:prefix_cache_hits_total{model_name="m"}': "0+1x30",
         'vllm:prefix_cache_queries_total{model_name="m"}': "0+100x30",
         'vllm:gpu_prefix_cache_hits_total{model_name="old"}': "0+2x30",
         'vllm:gpu_prefix_cache_queries_total{model_name="old"}': "0+100x30"},
        "25m", [{"model_name": "m"}, {"model_name": "old"}],
        {'vllm:prefix_cache_hits_total{model_name="m"}': "0+70x30",
         'vllm:prefix_cache_queries_total{model_name="m"}': "0+100x30"}),
    "LLMRouterErrorRate": (
        {'llmstack_router_requests_total{model="m",engine="e",status="200"}': "0+90x20",
         'llmstack_router_requests_total{model="m",engine="e",status="503"}': "0+10x20"},
        "12m", [{"model": "m"}],
        {'llmstack_router_requests_total{model="m",engine="e",status="200"}': "0+90x20"}),
    # a hardware XID (79) pages; an application XID (13), even sticky, does not
    "GPUXidError": ({XID: "0 0 79x5"}, "3m", [GPU3], {XID: "0 0 13x5"}),
    # an application XID warns while new; the same sticky value, unchanged for 15m, is quiet
    "GPUXidApplicationError": ({XID: "0 0 13x5"}, "3m", [GPU3], {XID: "13x40"}),
    "NodePoolAtMaxWithPendingPodsA100": (
        {f'kube_node_labels{{node="n0",{POOL}="a100"}}': "1x20",
         f'kube_node_labels{{node="n1",{POOL}="a100"}}': "1x20",
         'kube_pod_status_phase{namespace="llm-stack",pod="e2",phase="Pending"}': "1x20"},
        "15m", [{}],
        {f'kube_node_labels{{node="n0",{POOL}="a100"}}': "1x20",
         'kube_pod_status_phase{namespace="llm-stack",pod="e2",phase="Pending"}': "1x20"}),
}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not installed: run `make install` (Debian package prometheus)")
    return found


def _series(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"series": name, "values": v} for name, v in values.items()]


def _case(rule: AlertRule) -> list[dict]:
    firing, at, labels, healthy = CASES[rule.name]
    expected = [{"exp_labels": {**lab, "severity": rule.severity}} for lab in labels]
    return [
        {"interval": "1m", "input_series": _series(firing),
         "alert_rule_test": [{"eval_time": at, "alertname": rule.name, "exp_alerts": expected}]},
        {"interval": "1m", "input_series": _series(healthy),
         "alert_rule_test": [{"eval_time": at, "alertname": rule.name, "exp_alerts": []}]},
    ]


def _run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_shipped_rule_file_passes_promtool_check(tmp_path) -> None:
    """The PrometheusRule's groups, as a rule file, pass `promtool check rules`."""
    rules = alert_rules(OBJECTIVES)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(rules)}))
    out = _run(["check", "rules", "rules.yaml"], tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in out


def test_every_alert_fires_on_its_condition_and_not_when_healthy(tmp_path) -> None:
    """`promtool test rules`: one firing and one healthy case per alert, every alert covered.
    (Annotations are left out of the tested copy: promtool would compare their rendered text.)"""
    rules = alert_rules(OBJECTIVES)
    assert {r.name for r in rules} == set(CASES)
    groups = rule_groups(rules)
    for rule in groups[0]["rules"]:
        rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
             "tests": [case for rule in rules for case in _case(rule)]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    out = _run(["test", "rules", "tests.yaml"], tmp_path)
    assert "SUCCESS" in out and len(tests["tests"]) == 2 * len(rules)


def test_the_lora_panel_reads_each_engines_newest_state(tmp_path) -> None:
    """`promtool test rules` on the Serving dashboard's LoRA queries: of an engine's label sets
    the newest is its state (running, waiting, slots); the waiting count sees only that one."""
    from stack_components.monitoring.dashboards import overview

    (lora_panel,) = [p for p in overview.dashboard(lora=True).panels if p.title.startswith("LoRA")]
    assert not [p for p in overview.dashboard().panels if p.title.startswith("LoRA")]
    state, waiting = (t.expr for t in lora_panel.targets)
    labels = {"pod": "e0", "max_lora": "2", "running_lora_adapters": "sql,chat",
              "waiting_lora_adapters": "sql,legal"}
    selector = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    (tmp_path / "empty.yaml").write_text("groups: []\n")
    tests = {"rule_files": ["empty.yaml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": _series(_lora(waiting_newest=True)), "promql_expr_test": [
            {"expr": state, "eval_time": "5m",
             "exp_samples": [{"labels": selector, "value": 1}]},
            {"expr": waiting, "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 1}]}]},
        {"interval": "1m", "input_series": _series(_lora(waiting_newest=False)), "promql_expr_test": [
            {"expr": waiting, "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 0}]}]},
    ]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    out = _run(["test", "rules", "tests.yaml"], tmp_path)
    assert "SUCCESS" in out
