"""`Autoscaling` under the recording mocks: ScaledObjects, TriggerAuthentication, router HPA,
the optional KEDA release, and the `LLMStack` seam filling names from the stack."""

from __future__ import annotations

import ast
import inspect

import pytest
from component_helpers import validate_all

from policies.autoscaling.keda import PrometheusAuth
from policies.autoscaling.policy import EnginePolicy
from stack_components import LLMStack, LLMStackArgs, RouterArgs, VllmEngineArgs
from stack_components.autoscaling import (
    Autoscaling,
    AutoscalingArgs,
    AutoscalingExtension,
    RouterScaling,
)
from stack_components.errors import ArgsError
from tests.crd_schema import validate as validate_cr

PROM = "http://prometheus.monitoring.svc:9090"


def test_standalone_with_auth_and_router_hpa(deploy, k8s_objects, pulumi_mocks):
    """Given Deployment names: one ScaledObject, a TriggerAuthentication its triggers use, a
    schema-valid router HPA, and no KEDA release when the cluster has KEDA."""
    policy = EnginePolicy(deployment="llm-a", served_name="m", min_replicas=0, max_replicas=3)
    args = AutoscalingArgs(policies={"a": policy}, prometheus_url=PROM, namespace="serving",
                           prometheus_auth=PrometheusAuth(secret_name="prom-token"), install_keda=False,
                           router=RouterScaling(deployment="llm-router", min_replicas=2, max_replicas=4))
    deploy(lambda: Autoscaling("as", args))
    (auth,) = k8s_objects("TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "bearerToken", "name": "prom-token", "key": "token"}]
    (scaled,) = k8s_objects("ScaledObject")
    assert scaled["metadata"]["namespace"] == "serving"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "llm-a"
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
        assert trigger["metadata"]["authModes"] == "bearer"
        assert all(isinstance(v, str) for v in trigger["metadata"].values())
    assert validate_all(k8s_objects("HorizontalPodAutoscaler")) == 1
    assert validate_cr(auth) == 0 and validate_cr(scaled) == 1  # strict CRD schema, its one CEL rule
    assert not [r for r in pulumi_mocks.resources if r.type.startswith("kubernetes:helm.sh")]


def test_stack_seam_fills_names_and_refuses_unknown_models(deploy, k8s_objects):
    """Through `LLMStack`, policies target the engines' Deployments and served names; a policy
    for a model the stack lacks is refused."""
    engine = VllmEngineArgs(model="meta-llama/Llama-3.1-8B-Instruct", served_model_name="llama",
                            gpu="A100-80GB")
    ext = AutoscalingExtension(args=AutoscalingArgs(policies={"llama8b": EnginePolicy(max_replicas=2)},
                                                    prometheus_url=PROM, install_keda=False))
    args = LLMStackArgs(models={"llama8b": engine}, router=RouterArgs(image="r:1"), autoscaling=ext)
    deploy(lambda: LLMStack("llm", args))
    (scaled,) = k8s_objects("ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "llm-llama8b"
    assert 'model_name="llama"' in scaled["spec"]["triggers"][0]["metadata"]["query"]
    bad = AutoscalingExtension(args=AutoscalingArgs(policies={"other": EnginePolicy()},
                                                    prometheus_url=PROM))
    bad_args = LLMStackArgs(models={"llama8b": engine}, router=RouterArgs(image="r:1"), autoscaling=bad)
    with pytest.raises(ArgsError, match="must name the stack's models"):
        deploy(lambda: LLMStack("llm2", bad_args))


def test_every_public_field_is_documented():
    """Each Args field of the autoscaling component carries a docstring."""
    checked = 0
    for cls in (AutoscalingArgs, RouterScaling, AutoscalingExtension, EnginePolicy):
        body = ast.parse(inspect.getsource(cls)).body[0].body
        for i, stmt in enumerate(body):
            if isinstance(stmt, ast.AnnAssign):
                nxt = body[i + 1] if i + 1 < len(body) else None
                documented = isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                assert documented, (cls, stmt.target.id)
                checked += 1
    assert checked >= 20


def test_standalone_needs_deployment_names(deploy):
    """Used alone, every policy must name its Deployment (the seam fills it inside a stack)."""
    args = AutoscalingArgs(policies={"a": EnginePolicy(served_name="m")}, prometheus_url=PROM)
    with pytest.raises(ArgsError, match=r"policies\['a'\].deployment"):
        deploy(lambda: Autoscaling("as", args))
