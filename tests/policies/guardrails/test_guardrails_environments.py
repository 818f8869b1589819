"""The pack passes every shipped environment, as the mock runtime records it."""

from __future__ import annotations

import pytest
from guardrail_helpers import records, run, stack_config

from infra.stackfile import STACKS
from policies.guardrails.registry import GUARDRAILS


@pytest.mark.parametrize("stack", STACKS)
def test_every_environment_passes_every_policy(stack):
    """With the stack's own pack settings (budget, prices, registries), no policy reports anything."""
    recs = records(stack)
    findings = run(recs, stack_config(stack))
    assert findings == [], "\n".join(f.message for f in findings)
    assert len(recs) > 50 and len(GUARDRAILS) == 15


@pytest.mark.parametrize("stack", STACKS)
def test_today_nothing_fires_and_after_standard_support_the_advisory_does(stack):
    """On 2026-11-25 each stack's Kubernetes 1.35 is in EKS standard support: no finding. After its
    standard support ends (2027-03-27) the one finding is that advisory, naming the cluster."""
    assert run(records(stack), stack_config(stack, today="2026-11-25")) == []
    findings = run(records(stack), stack_config(stack, today="2027-04-01"))
    assert [(f.policy, f.level) for f in findings] == [("k8s-extended-support", "advisory")]
    message = findings[0].message
    assert "aws:eks/cluster:Cluster eks" in message and "in extended support since 2027-03-27" in message


def test_policy_names_are_unique_and_levels_known():
    """Policy names are unique (Pulumi keys config on them) and every level is a Pulumi level."""
    names = [g.name for g in GUARDRAILS]
    assert len(set(names)) == len(names) == 15
    assert {g.level for g in GUARDRAILS} == {"mandatory", "advisory"}
    assert sum(g.level == "advisory" for g in GUARDRAILS) == 3
