"""Helpers shared by the component tests: schema validation and walking manifests."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

K8S_VERSION = "1.31"


def validate_all(objects: list[dict[str, Any]]) -> int:
    """Validate every object against the Kubernetes OpenAPI schema (strict); return the count."""
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    return len(objects)


def walk(value: Any):
    """Every scalar inside nested dicts and lists."""
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
    else:
        yield value
