"""The strict CRD check itself: it refuses what the API server would prune or reject."""

from __future__ import annotations

import pytest

from tests.crd_schema import PRESERVE, CrdViolation, schemas, strict, validate

SCALED = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "s"},
          "spec": {"scaleTargetRef": {"name": "d"}, "minReplicaCount": 1, "maxReplicaCount": 3,
                   "triggers": [{"type": "prometheus", "metadata": {"query": "up"}}]}}


def test_every_vendored_crd_is_loaded():
    """The five pinned CRDs are served at the versions the stack renders."""
    assert set(schemas()) == {("monitoring.coreos.com/v1", k) for k in ("PodMonitor", "ServiceMonitor",
                                                                         "PrometheusRule")} | {
        ("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication")}


def test_a_valid_object_passes_and_evaluates_its_cel_rule():
    """A minimal ScaledObject passes, with the CRD's one CEL rule evaluated."""
    assert validate(SCALED) == 1


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s["spec"].update(pollingInterval="30"), "pollingInterval: '30' is not of type 'integer'"),
    (lambda s: s["spec"].update(fallbackk={}), "'fallbackk' was unexpected"),
    (lambda s: s["spec"]["triggers"][0].update(metricTyp="Value"), "'metricTyp' was unexpected"),
    (lambda s: s["spec"].update(minReplicaCount=5), "minReplicaCount must be less than or equal"),
    (lambda s: s["spec"].pop("triggers"), "'triggers' is a required property"),
])
def test_a_wrong_field_is_refused_naming_it(change, message):
    """A mistyped, unknown (would be pruned), CEL-refused or missing field fails with its path."""
    obj = {**SCALED, "spec": {**SCALED["spec"], "triggers": [dict(SCALED["spec"]["triggers"][0])]}}
    change(obj)
    with pytest.raises(CrdViolation, match=message.replace("(", r"\(")):
        validate(obj)


def test_preserved_fields_stay_open():
    """`x-kubernetes-preserve-unknown-fields` objects (and free maps) are not tightened."""
    tight = strict({"type": "object", "properties": {"a": {"type": "object", PRESERVE: True,
                                                             "properties": {"b": {}}}}})
    assert tight["additionalProperties"] is False
    assert "additionalProperties" not in tight["properties"]["a"]


def test_an_unknown_kind_is_refused():
    """A kind no vendored CRD serves is an error, not a pass."""
    with pytest.raises(CrdViolation, match="no vendored CRD serves keda.sh/v1alpha1 ScaledJob"):
        validate({**SCALED, "kind": "ScaledJob"})

