"""The whole program per environment under the recording mocks: what it builds, what it never leaks,
and that a bad config fails before any resource exists."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from infra.config import parse_stack_config
from infra.config.pools import NODE_POOL_LABEL
from infra.errors import ConfigError
from infra.mocks import REDACTED
from infra.stackfile import parse_stack_yaml, raw_project_config, read_stack_file

ROOT = Path(__file__).resolve().parents[2]
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_program_builds_cluster_pools_and_serving(run_program, stack):
    """Each env: one EKS cluster at the configured version, node groups per pool (GPU pools on the
    NVIDIA AMI with the GPU taint; one group per zone, sizes summing to the pool's), an engine
    Deployment per model, a router, pinned Helm add-ons."""
    stack_file = read_stack_file(ROOT, stack)
    config = parse_stack_config(raw_project_config(stack_file))
    mocks = run_program(stack_file)
    types = Counter(r.type for r in mocks.resources)
    (cluster,) = mocks.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["version"] == config.cluster.kubernetes_version
    groups: dict[str, list[dict]] = {}
    for g in mocks.of_type(NODE_GROUP):
        groups.setdefault(g.inputs["labels"][NODE_POOL_LABEL], []).append(g.inputs)
    assert set(groups) == set(config.node_pools)
    inspected = 0
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
    for name, pool in config.node_pools.items():
        gpu = pool.gpus > 0
        assert all((g["amiType"] == "AL2023_x86_64_NVIDIA") == gpu for g in groups[name])
        assert all((taint in g["taints"]) == gpu for g in groups[name])
        assert all(len(g["subnetIds"]) == 1 for g in groups[name])  # one zone per group
        sums = {k: sum(g["scalingConfig"][k] for g in groups[name])
                for k in ("minSize", "desiredSize", "maxSize")}
        assert (sums["minSize"], sums["desiredSize"]) == (pool.min_size, pool.desired_size)
        assert pool.max_size <= sums["maxSize"] <= max(pool.max_size, len(groups[name]))
        inspected += 1
    assert inspected == len(config.node_pools) >= 2
    deployments = {r.inputs["metadata"]["name"] for r in mocks.of_type("kubernetes:apps/v1:Deployment")}
    assert {f"llm-{m}" for m in config.models} | {"llm-router"} <= deployments
    monitoring_releases = 2 if config.monitoring.enabled else 0  # kube-prometheus-stack, dcgm-exporter
    keda = 1 if config.autoscaling.enabled else 0
    # device plugin, metrics-server, cluster autoscaler, load balancer controller
    assert types["kubernetes:helm.sh/v3:Release"] == 4 + monitoring_releases + keda
    assert types["pulumi:providers:kubernetes"] == 1


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_secret_value_reaches_recorded_inputs(run_program, stack):
    """Secret placeholders never appear in any recorded input; the kubeconfig and tokens are redacted."""
    mocks = run_program(read_stack_file(ROOT, stack))
    dumped = json.dumps([r.inputs for r in mocks.resources])
    assert "placeholder-secret" not in dumped
    (provider,) = mocks.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == REDACTED
    secrets = [r for r in mocks.resources if r.type == "kubernetes:core/v1:Secret"]
    assert secrets and all(r.inputs["stringData"] == REDACTED for r in secrets)


def test_bad_config_fails_before_any_resource(run_program, pulumi_mocks):
    """A config error raises ConfigError naming the key, and nothing is registered."""
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["llm-stack:models"]["llama70b"]["tensorParallelSize"] = 3
    before = len(pulumi_mocks.resources)
    with pytest.raises(ConfigError, match=r"llm-stack:models\.llama70b\.tensorParallelSize"):
        run_program(parse_stack_yaml(document))
    assert len(pulumi_mocks.resources) == before == 0


def test_existing_cluster_mode_builds_no_aws(run_program):
    """Mode `existing`: a provider from the secret kubeconfig, the serving stack, and no AWS resource."""
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    config = document["config"]
    config["llm-stack:cluster"] = {"mode": "existing", "name": "on-prem", "kubernetesVersion": "1.31"}
    config["llm-stack:kubeconfig"] = {"secure": "v1:a2NmZw==:ZXhpc3Rpbmc="}
    config["llm-stack:router"]["image"] = "registry.example.com/llm-stack/router:1.0.0"
    config["llm-stack:benchmark"]["image"] = "registry.example.com/llm-stack/benchmark:1.0.0"
    mocks = run_program(parse_stack_yaml(document))
    aws = [r for r in mocks.resources if r.type.startswith(("aws:", "pulumi:providers:aws"))]
    assert aws == []
    (provider,) = mocks.of_type("pulumi:providers:kubernetes")
    assert provider.name == "existing" and provider.inputs["kubeconfig"] == REDACTED
    assert len(mocks.of_type("kubernetes:apps/v1:Deployment")) >= 2


def test_component_rule_fails_under_the_stack_key_before_any_resource(run_program, pulumi_mocks):
    """extraArgs [--enable-prefix-caching] passed the stack check and failed inside the engine
    component after the AWS resources: now the component's own rule fails first, by stack key."""
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["llm-stack:models"]["llama3b"]["extraArgs"] = ["--enable-prefix-caching"]
    with pytest.raises(ConfigError, match=r"^llm-stack:models\.llama3b\.extraArgs\[0\] must not set a flag"):
        run_program(parse_stack_yaml(document))
    assert len(pulumi_mocks.resources) == 0


def test_router_and_benchmark_images_are_built_into_ecr_and_run_by_digest(run_program, monkeypatch):
    """No image in the stack file: an ECR repository and a docker-build Image (linux/amd64, pushed)
    each of router/Dockerfile and bench/Dockerfile; router pods run the first by digest, the
    benchmark Job's containers the second (run from the root, as `llm-stack render` is)."""
    monkeypatch.chdir(ROOT)
    mocks = run_program(read_stack_file(ROOT, "dev"))
    repos = {r.inputs["name"]: r for r in mocks.of_type("aws:ecr/repository:Repository")}
    images = {r.inputs["dockerfile"]["location"]: r for r in mocks.of_type("docker-build:index:Image")}
    assert sorted(repos) == ["llm-stack-dev/benchmark", "llm-stack-dev/router"]
    assert all(repo.inputs["imageScanningConfiguration"] for repo in repos.values())
    assert sorted(images) == ["./bench/Dockerfile", "./router/Dockerfile"]
    for image in images.values():
        assert image.inputs["push"] is True and image.inputs["platforms"] == ["linux/amd64"]
        assert "@sha256:" in image.state["ref"]
    expected = {"llm-router": images["./router/Dockerfile"].state["ref"],
                "llm-bench": images["./bench/Dockerfile"].state["ref"]}
    pods = {r.inputs["metadata"]["name"]: r.inputs["spec"]["template"]["spec"] for r in mocks.resources
            if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")
            and r.inputs["metadata"]["name"] in expected}
    assert sorted(pods) == sorted(expected)
    for name, pod in pods.items():
        assert {c["image"] for c in pod["containers"] + pod.get("initContainers", [])} == {expected[name]}
