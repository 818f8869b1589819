"""The pack as the Pulumi CLI drives it: pulumi-policy's own analyzer servicer (the object
`PolicyPack` serves over gRPC) answers Analyze / AnalyzeStack / Configure requests built from
the recorded resources, so the SDK's deserialisation, config and enforcement levels are real."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import struct_pb2
from guardrail_helpers import ROOT, records
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

from policies.guardrails.pack import PACK_NAME, pulumi_policies
from policies.guardrails.registry import GUARDRAILS

PACK_DIR = ROOT / "policies" / "guardrails"


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def _servicer(config: dict[str, dict[str, Any]] | None = None) -> _PolicyAnalyzerServicer:
    servicer = _PolicyAnalyzerServicer(PACK_NAME, "0.0.1", pulumi_policies(), EnforcementLevel.MANDATORY)
    # As the CLI does: a configured policy keeps the level it declares unless the file sets one.
    levels = {g.name: proto.MANDATORY if g.level == "mandatory" else proto.ADVISORY for g in GUARDRAILS}
    policy_config = {
        name: proto.PolicyConfig(properties=_struct(props), enforcementLevel=levels[name])
        for name, props in (config or {}).items()
    }
    servicer.Configure(proto.ConfigureAnalyzerRequest(policyConfig=policy_config), None)
    return servicer


def _analyze_each(servicer, recs) -> list[Any]:
    diagnostics = []
    for r in recs:
        request = proto.AnalyzeRequest(
            type=r["type"], name=r["name"], urn=r["urn"], properties=_struct(r["inputs"])
        )
        diagnostics += servicer.Analyze(request, None).diagnostics
    return diagnostics


def _analyze_stack(servicer, recs) -> list[Any]:
    resources = [
        proto.AnalyzerResource(type=r["type"], name=r["name"], urn=r["urn"], properties=_struct(r["inputs"]))
        for r in recs
    ]
    return list(servicer.AnalyzeStack(proto.AnalyzeStackRequest(resources=resources), None).diagnostics)


def test_sdk_describes_every_policy_with_its_level_and_schema():
    """GetAnalyzerInfo lists the 15 policies, their levels and the config keys each reads."""
    info = _servicer().GetAnalyzerInfo(None, None)
    by_name = {p.name: p for p in info.policies}
    assert list(by_name) == [g.name for g in GUARDRAILS]
    assert by_name["gpu-budget"].enforcementLevel == proto.ADVISORY
    assert by_name["engines-isolated"].enforcementLevel == proto.MANDATORY
    assert set(by_name["gpu-budget"].configSchema.properties) == {
        "gpuBudgetUsdPerHour",
        "instanceHourlyUsd",
        "gpuTaintKey",
    }


def test_sdk_passes_prod_with_its_stack_config():
    """Every prod resource through Analyze and the whole stack through AnalyzeStack: no diagnostics."""
    recs = records("prod")
    config = {
        "k8s-extended-support": {"today": "2026-01-01"},
        "pinned-images": {
            "allowedRegistries": ["lmcache/", "valkey/", "amazon/", "*.dkr.ecr.*.amazonaws.com/"],
        },
        "gpu-budget": {"gpuBudgetUsdPerHour": 300, "instanceHourlyUsd": {"p4de.24xlarge": 40.9657}},
    }
    servicer = _servicer(config)
    diagnostics = _analyze_each(servicer, recs) + _analyze_stack(servicer, recs)
    assert diagnostics == [], [d.message for d in diagnostics]
    assert len(recs) > 80


def test_sdk_reports_a_bad_resource_as_mandatory_with_the_fix():
    """An engine without the GPU toleration comes back as a mandatory gpu-workloads diagnostic."""
    recs = [r for r in records("prod") if r["name"] == "llm-llama8b-deployment"]
    recs[0]["inputs"]["spec"]["template"]["spec"].pop("tolerations")
    (diag,) = _analyze_each(_servicer({"k8s-extended-support": {"today": "2026-01-01"}}), recs)
    assert diag.policyName == "gpu-workloads" and diag.enforcementLevel == proto.MANDATORY
    assert "Deployment llm-stack/llm-llama8b" in diag.message and "fix: add tolerations" in diag.message


def test_sdk_stack_policy_reports_against_the_resource_urn_and_reads_config():
    """The budget (config from the pack's config) over prod's GPU pools: an advisory on the stack."""
    config = {
        "gpu-budget": {"gpuBudgetUsdPerHour": 100, "instanceHourlyUsd": {"p4de.24xlarge": 40}},
        "k8s-extended-support": {"today": "2026-01-01"},
    }
    (diag,) = _analyze_stack(_servicer(config), records("prod"))
    assert diag.policyName == "gpu-budget" and diag.enforcementLevel == proto.ADVISORY
    assert "$240.00/h" in diag.message and "over the budget of $100.00/h" in diag.message


def test_pack_directory_is_a_python_policy_pack():
    """PulumiPolicy.yaml names the Python runtime, and no module in the pack's directory shadows
    the standard library (the CLI runs the directory with it first on sys.path)."""
    assert yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())["runtime"] == "python"
    modules = {p.stem for p in PACK_DIR.glob("*.py")} - {"__init__", "__main__"}
    assert modules and not modules & set(sys.stdlib_module_names)
    assert (PACK_DIR / "__main__.py").read_text().count("PolicyPack(") == 1
    assert Path(PACK_DIR / "__main__.py").is_file()


def test_sdk_judges_kubernetes_support_at_the_run_date():
    """With no `today` in the config the pack uses the run's date: a cluster on 1.32 (which left
    standard support on 2026-03-23) is reported (advisory) on any later run."""
    recs = [r for r in records("prod") if r["type"] == "aws:eks/cluster:Cluster"]
    recs[0]["inputs"]["version"] = "1.32"
    (diag,) = _analyze_each(_servicer(), recs)
    assert diag.policyName == "k8s-extended-support" and diag.enforcementLevel == proto.ADVISORY
    assert "runs Kubernetes 1.32, in extended support since 2026-03-23" in diag.message
