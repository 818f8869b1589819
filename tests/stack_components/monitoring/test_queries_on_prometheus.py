"""Every PromQL expression the stack ships (each dashboard target, each alert's signals), for
the prod stack's config, returns data from a real Prometheus scraping emulated engines, their
emulated GPU exporter, a kube-state-metrics stand-in and the real router under load. A typo
in a metric or label name fails here, naming the panel or rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.demo.observed import ObservedStack, observed_stack
from infra.config import parse_stack_config
from infra.serving import ServingSecrets, monitoring_args
from infra.stackfile import raw_project_config, read_stack_file
from stack_components.monitoring.args import MonitoringArgs
from stack_components.monitoring.manifests import shipped_queries

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
    with observed_stack(tmp_path_factory.mktemp("observed"), pools=pools,
                        namespace=prod_monitoring.stack_namespace) as stack:
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
