"""Every rendered ScaledObject passes KEDA 2.20.2's own CRD schema, with unknown fields refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

HERE = Path(__file__).parent
GOLDEN = HERE.parents[1] / "golden"


def _strict(schema: Any) -> Any:
    """additionalProperties: false wherever the schema lists properties and keeps no unknown fields."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((HERE / "crds" / "keda.sh_scaledobjects.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_rendered_scaled_objects_match_the_crd(validator, stack):
    """Each golden ScaledObject (cooldowns, triggers, HPA behaviour) is valid and sets the
    initial cooldown, so a misspelt field cannot be pruned away unnoticed."""
    paths = sorted((GOLDEN / stack / "kubernetes").glob("*.scaledobject.*.yaml"))
    assert paths
    for path in paths:
        obj = yaml.safe_load(path.read_text())
        errors = [e.message for e in validator.iter_errors(obj)]
        assert not errors, (path.name, errors)
        assert obj["spec"]["initialCooldownPeriod"] > 0


def test_the_strict_schema_refuses_a_misspelt_field(validator):
    """The check is not all-green: `initialCoolDownPeriod` (wrong case) is refused."""
    obj = yaml.safe_load(next((GOLDEN / "dev" / "kubernetes").glob("*.scaledobject.*.yaml")).read_text())
    obj["spec"]["initialCoolDownPeriod"] = obj["spec"].pop("initialCooldownPeriod")
    assert any("initialCoolDownPeriod" in e.message for e in validator.iter_errors(obj))
