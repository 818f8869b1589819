"""The targets file the router and Prometheus follow; Prometheus' config for several router replicas."""

from __future__ import annotations

import json

from contracts import ENGINE_MODEL_LABEL
from local.autoscale.engines import write_targets
from local.autoscale.loop import ENGINE_JOB, prometheus_config
from local.demo.prometheus import ROUTER_JOB
from router.settings import FileDiscovery
from router.shell.discovery.file import parse_targets


def test_written_targets_parse_back_as_the_router_reads_them(tmp_path):
    """One group of `host:port` targets labelled with the model; no URL: an empty list (no engines)."""
    path = tmp_path / "engines.json"
    write_targets(path, ["http://127.0.0.1:9001", "http://127.0.0.1:9002"], "m")
    specs = parse_targets(path.read_text(), FileDiscovery(path=str(path)), default_gpu=1, default_cpu=0)
    assert [s.url for s in specs] == ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]
    assert json.loads(path.read_text())[0]["labels"] == {ENGINE_MODEL_LABEL: "m"}
    write_targets(path, [], "m")
    assert json.loads(path.read_text()) == [] and not list(tmp_path.glob("*.tmp"))


def test_prometheus_scrapes_one_router_or_every_replica(tmp_path):
    """A single `host:port` (the closed loop) or a list (the chaos benchmark's replicas)."""
    def routers(doc: str) -> list[str]:
        jobs = {j["job_name"]: j for j in json.loads(doc)["scrape_configs"]}
        assert jobs[ENGINE_JOB]["file_sd_configs"][0]["files"] == [str(tmp_path / "t.json")]
        return jobs[ROUTER_JOB]["static_configs"][0]["targets"]
    kube = "http://127.0.0.1:9"
    assert routers(prometheus_config(tmp_path / "t.json", "127.0.0.1:1", 0.5, kube)) == ["127.0.0.1:1"]
    assert routers(prometheus_config(tmp_path / "t.json", ["127.0.0.1:1", "127.0.0.1:2"], 0.5, kube)) == \
        ["127.0.0.1:1", "127.0.0.1:2"]
