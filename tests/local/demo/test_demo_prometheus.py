"""The Prometheus config the demo and the query proof run: engines, router, emulated GPU
exporter and kube-state stand-in on loopback, labelled as the cluster's monitors label them."""

from __future__ import annotations

import yaml

from local.demo.prometheus import (
    DCGM_JOB,
    DCGM_PATH,
    ENGINE_JOB,
    KUBE_STATE_JOB,
    ROUTER_JOB,
    ScrapeTargets,
    render_config,
)


def _jobs(**extra) -> tuple[dict, dict]:
    targets = ScrapeTargets(engine_urls=["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
                            router_url="http://127.0.0.1:9100", **extra)
    doc = yaml.safe_load(render_config(targets))
    return doc, {j["job_name"]: j for j in doc["scrape_configs"]}


def test_config_scrapes_engines_router_and_gpus() -> None:
    """Engines, router and GPU series, each engine a target labelled with its pod and namespace,
    its GPU series with the node as `Hostname`; 1 s scrapes."""
    doc, jobs = _jobs()
    assert set(jobs) == {ENGINE_JOB, ROUTER_JOB, DCGM_JOB}
    engines = jobs[ENGINE_JOB]["static_configs"]
    assert [g["targets"] for g in engines] == [["127.0.0.1:9001"], ["127.0.0.1:9002"]]
    assert [g["labels"]["pod"] for g in engines] == ["engine-0", "engine-1"]
    assert jobs[ROUTER_JOB]["static_configs"][0]["targets"] == ["127.0.0.1:9100"]
    gpus = jobs[DCGM_JOB]
    assert gpus["metrics_path"] == DCGM_PATH and gpus["honor_labels"] is True
    assert [g["labels"]["Hostname"] for g in gpus["static_configs"]] == ["node-0", "node-1"]
    assert doc["global"]["scrape_interval"] == "1s"


def test_config_adds_kube_state_when_given() -> None:
    """A kube-state-metrics stand-in becomes its own job."""
    _, jobs = _jobs(kube_state_url="http://127.0.0.1:9200")
    assert jobs[KUBE_STATE_JOB]["static_configs"] == [{"targets": ["127.0.0.1:9200"]}]
