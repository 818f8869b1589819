"""Every PromQL expression the stack ships (each dashboard target, each alert's signals), for
the prod stack's config, returns data from a real Prometheus scraping emulated engines, their
emulated GPU exporter, a kube-state-metrics stand-in and the real router under load. A typo
in a metric or label name fails here, naming the panel or rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import parse_stack_config
from infra.serving import ServingSecrets, monitoring_args
from infra.stackfile import raw_project_config, read_stack_file
from local.demo.observed import ObservedStack, observed_stack
from stack_components.monitoring.args import MonitoringArgs
from stack_components.monitoring.manifests import rules, shipped_queries
from stack_components.monitoring.rules import rule_groups

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def prod_monitoring() -> MonitoringArgs:
    config = parse_stack_config(raw_project_config(read_stack_file(ROOT, "prod")))
    args = monitoring_args(config, ServingSecrets(hf_token=None))
    assert args is not None
    return args


@pytest.fixture(scope="module")
def live(prod_monitoring, tmp_path_factory) -> ObservedStack:
    """The observed local stack, loaded until every counter has moved between two scrapes."""
    pools = {name: p.gpus_per_node for name, p in prod_monitoring.pools.items()}
    groups = rule_groups(rules(prod_monitoring))  # the shipped rule file, evaluated live
    with observed_stack(tmp_path_factory.mktemp("observed"), pools=pools,
                        namespace=prod_monitoring.stack_namespace, rule_groups=groups) as stack:
        assert stack.load() == 32
        yield stack


def test_every_shipped_query_returns_data(live, prod_monitoring) -> None:
    """No shipped query is empty on a loaded stack; print the counts for the record."""
    queries = shipped_queries(prod_monitoring)
    empty = [f"{q.source}: {q.expr}" for q in queries if not live.query(q.expr)]
    assert not empty, "queries returning no data:\n" + "\n".join(empty)
    sources = {q.source.split("/")[0] for q in queries}
    assert sources == {"dashboard", "rule"} and len(queries) >= 40
    print(f"{len(queries)} shipped queries evaluated on a live Prometheus, all returned data")


def test_a_misspelt_metric_is_caught(live) -> None:
    """The proof can fail: a metric name with a typo returns nothing."""
    assert live.query("sum(rate(vllm:prompt_token_total[5m]))") == []
    assert live.query("sum(rate(vllm:prompt_tokens_total[5m]))")


def test_gpu_series_follow_the_engine_pods(live) -> None:
    """Each emulated engine pod has its GPU's series, on its node, with DCGM names and units."""
    rows = live.query('DCGM_FI_DEV_FB_USED{pod!=""}')
    assert {r["metric"]["pod"] for r in rows} == {"engine-0", "engine-1"}
    assert {r["metric"]["Hostname"] for r in rows} == {"node-0", "node-1"}
    assert all(float(r["value"][1]) == 73728 for r in rows)  # 90 % of 80 GiB, in MiB


def test_shipped_rules_load_and_an_xid_pages(live, prod_monitoring) -> None:
    """The shipped rule file loads in Prometheus with every alert; nothing fires on the healthy
    stack; an XID on engine 0's emulated GPU fires GPUXidError for its node, pod and GPU."""
    loaded = {r["name"] for g in live.rule_groups() for r in g["rules"]}
    assert loaded == {r.name for r in rules(prod_monitoring)}
    assert live.query('ALERTS{alertstate="firing"}') == []
    live.set_faults(0, {"xid": 79})
    try:
        (alert,) = live.wait_for('ALERTS{alertname="GPUXidError",alertstate="firing"}', deadline_s=30)
    finally:
        live.set_faults(0, {})
    labels = alert["metric"]
    assert (labels["Hostname"], labels["gpu"], labels["severity"]) == ("node-0", "0", "critical")
