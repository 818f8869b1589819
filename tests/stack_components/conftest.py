"""Fixtures for component tests: run a build under the recording mocks until every resource
is registered, then hand back the recorded Kubernetes objects (schema-validated on request)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from infra.mocks import REDACTED, RecordingMocks


@pytest.fixture(autouse=True)
def _mock_runtime(pulumi_mocks: RecordingMocks) -> RecordingMocks:
    """Every test here runs under the suite's recording Pulumi mocks."""
    return pulumi_mocks


def _manifest(inputs: dict[str, Any]) -> dict[str, Any]:
    """A recorded input set as a manifest; a redacted Secret payload becomes an empty map."""
    obj = dict(inputs)
    for key in ("stringData", "data"):
        if obj.get(key) == REDACTED:
            obj[key] = {}
    return obj


@pytest.fixture
def deploy(pulumi_mocks: RecordingMocks) -> Callable[[Callable[[], Any]], Any]:
    """Run `build()` under the mocks (awaiting any Output it returns) and return its result."""

    def run(build: Callable[[], Any]) -> Any:
        holder: dict[str, Any] = {}

        def program() -> Any:
            holder["result"] = build()
            return holder["result"] if isinstance(holder["result"], pulumi.Output) else None

        pulumi.runtime.test(program)()
        return holder["result"]

    return run


@pytest.fixture
def k8s_objects(pulumi_mocks: RecordingMocks) -> Callable[..., list[dict[str, Any]]]:
    """Recorded Kubernetes objects (optionally of one kind), as manifests."""

    def objects(kind: str | None = None) -> list[dict[str, Any]]:
        found = [_manifest(r.inputs) for r in pulumi_mocks.resources if r.type.startswith("kubernetes:")]
        return [o for o in found if kind is None or o["kind"] == kind]

    return objects
