"""The Prometheus config the demo runs: every engine and the router, loopback, 1 s scrapes."""

from __future__ import annotations

import yaml

from benchmarks.demo.prometheus import ENGINE_JOB, ROUTER_JOB, render_config


def test_config_scrapes_engines_and_router() -> None:
    """One job for the engines, one for the router, targets as host:port."""
    text = render_config(["http://127.0.0.1:9001", "http://127.0.0.1:9002"], "http://127.0.0.1:9100")
    doc = yaml.safe_load(text)
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert set(jobs) == {ENGINE_JOB, ROUTER_JOB}
    assert jobs[ENGINE_JOB]["static_configs"][0]["targets"] == ["127.0.0.1:9001", "127.0.0.1:9002"]
    assert jobs[ROUTER_JOB]["static_configs"][0]["targets"] == ["127.0.0.1:9100"]
    assert doc["global"]["scrape_interval"] == "1s"
