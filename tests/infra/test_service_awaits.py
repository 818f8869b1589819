"""Pulumi's await on every rendered Service lasts as long as the await on the pods it fronts:
a Service with a selector waits until none of its endpoints is not-ready (pulumi-kubernetes
provider/pkg/await/service.go), 600 s unless `pulumi.com/timeoutSeconds` says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.stackfile import STACKS

TIMEOUT = "pulumi.com/timeoutSeconds"
SKIP = "pulumi.com/skipAwait"
DEFAULT_S = 600  # DefaultServiceTimeoutMins / the Deployment awaiter's default, 10 minutes


def await_s(obj: dict) -> float:
    """How long Pulumi awaits `obj`: infinite when skipped, its annotation, else the default."""
    annotations = obj["metadata"].get("annotations") or {}
    if annotations.get(SKIP) == "true":
        return float("inf")
    return float(annotations.get(TIMEOUT, DEFAULT_S))


def fronted(service: dict, workloads: list[dict]) -> list[dict]:
    """The workloads in the Service's namespace whose pod labels its selector matches."""
    selector = service["spec"].get("selector") or {}
    namespace = service["metadata"].get("namespace")
    return [w for w in workloads if selector and w["metadata"].get("namespace") == namespace
            and selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]


def _objects(directory: Path) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((directory / "kubernetes").glob("*.yaml"))]


@pytest.mark.parametrize("stack", STACKS)
def test_every_service_awaits_as_long_as_the_pods_it_fronts(rendered, stack):
    """Engines' and router's Services carry their Deployment's timeout (an engine loading for
    20 minutes is a not-ready endpoint: the 10-minute default failed the first `pulumi up`)."""
    objects = _objects(rendered[stack])
    workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    services = [o for o in objects if o["kind"] == "Service"]
    checked = 0
    for service in services:
        for workload in fronted(service, workloads):
            names = (service["metadata"]["name"], workload["metadata"]["name"])
            assert await_s(service) >= await_s(workload), names
            checked += 1
    slow = [w for w in workloads if await_s(w) > DEFAULT_S]
    assert checked >= len(services) >= 2 and slow  # every Service fronts a workload (engines, router)


def test_fronted_matches_by_selector_and_namespace():
    """The matcher itself: a selector subset in the same namespace matches; another namespace does not."""
    labels = {"x": "1", "y": "2"}
    pod = {"metadata": {"namespace": "a"}, "spec": {"template": {"metadata": {"labels": labels}}}}
    other = {"metadata": {"namespace": "b"}, "spec": pod["spec"]}
    service = {"metadata": {"namespace": "a"}, "spec": {"selector": {"x": "1"}}}
    assert fronted(service, [pod, other]) == [pod]
    assert fronted({"metadata": {"namespace": "a"}, "spec": {}}, [pod]) == []
