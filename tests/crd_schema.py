"""Rendered custom resources checked by their own CRDs: each served version's `openAPIV3Schema`
(vendored in tests/data/crds, see its README), made strict (unknown fields refused, where the
API server would silently prune them), with its CEL rules (`x-kubernetes-validations`)
evaluated by cel-python."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

CRD_DIR = Path(__file__).parent / "data" / "crds"
PRESERVE = "x-kubernetes-preserve-unknown-fields"
RULES = "x-kubernetes-validations"


class CrdViolation(AssertionError):
    """A custom resource its CRD would refuse (or prune): names the object and the path."""


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy refusing unknown fields wherever the schema lists `properties` and does not
    preserve unknown fields (vendored README, 'Strict checks')."""
    out = copy.deepcopy(schema)
    _tighten(out)
    return out


def _tighten(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _tighten(item)
        return
    if not isinstance(node, dict):
        return
    if "properties" in node and not node.get(PRESERVE) and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for value in node.values():
        _tighten(value)


@cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the served version's schema, as shipped (not yet strict)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                found[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return found


def _rules(schema: Any, value: Any, where: str) -> Iterator[tuple[str, dict[str, str], Any]]:
    """Every (path, rule, value) a CEL rule applies to in `value` (objects' properties only:
    the vendored CRDs put rules nowhere else)."""
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return
    for rule in schema.get(RULES, []):
        yield where, rule, value
    for name, sub in schema.get("properties", {}).items():
        if name in value:
            yield from _rules(sub, value[name], f"{where}.{name}")


def _check_rules(schema: dict[str, Any], obj: dict[str, Any], name: str) -> int:
    env, count = celpy.Environment(), 0
    for where, rule, value in _rules(schema, obj, ""):
        program = env.program(env.compile(rule["rule"]))
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            raise CrdViolation(f"{name}: {where or '.'}: {rule['message']} (rule {rule['rule']!r})")
        count += 1
    return count


def validate(obj: dict[str, Any]) -> int:
    """Validate one custom resource strictly; return how many CEL rules were evaluated.
    Raises CrdViolation naming the object and the failing path."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    name = f"{key[1]} {obj.get('metadata', {}).get('name')}"
    if key not in schemas():
        raise CrdViolation(f"{name}: no vendored CRD serves {key[0]} {key[1]} (have {sorted(schemas())})")
    schema = schemas()[key]
    errors = sorted(jsonschema.Draft7Validator(strict(schema)).iter_errors(obj), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.path)) or '.'}: {e.message}" for e in errors]
        raise CrdViolation(f"{name} does not match its CRD:\n" + "\n".join(lines))
    return _check_rules(schema, obj, name)
