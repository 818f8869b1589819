"""Each deliberately bad resource is rejected by the policy meant for it (and by no other),
with a message that names the resource and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from guardrail_helpers import add, find, records, run, stack_config

DEPLOY = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/example"


def _engine(recs):
    return find(recs, DEPLOY, "llm-llama8b")["spec"]["template"]["spec"]


def _container(recs, name="llm-llama8b"):
    return find(recs, DEPLOY, name)["spec"]["template"]["spec"]["containers"][0]


def _engine_netpol(recs):
    return find(recs, NETPOL, "llm-netpol-engines")["spec"]


def _public_router(recs, tls=False):
    notes = find(recs, SERVICE, "llm-router")["metadata"]["annotations"]
    notes.pop("service.beta.kubernetes.io/aws-load-balancer-scheme")
    if tls:
        notes["service.beta.kubernetes.io/aws-load-balancer-ssl-cert"] = CERT


def _no_router_secret(recs):
    _public_router(recs, tls=True)
    spec = find(recs, DEPLOY, "llm-router")["spec"]["template"]["spec"]
    spec["volumes"] = [v for v in spec["volumes"] if "secret" not in v]


def _add_bucket(recs):
    add(recs, "aws:s3/bucketV2:BucketV2", "models", {"bucket": "llm-models", "forceDestroy": False})


def _add_helm_with_key(recs):
    add(
        recs,
        "kubernetes:helm.sh/v3:Release",
        "exporter",
        {"chart": "x", "values": {"aws": {"accessKeyId": "AKIA" + "ABCDEFGHIJKLMNOP"}}},
    )


def _add_karpenter_pool(recs):
    add(
        recs,
        "kubernetes:karpenter.sh/v1:NodePool",
        "gpu",
        {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}, "spec": {}},
    )


def _add_wildcard_policy(recs):
    doc = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    add(recs, "aws:iam/rolePolicy:RolePolicy", "too-broad", {"role": "pools-node", "policy": doc})


ALL_GPUS = {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}


def _add_cpu_pod_on_gpu(recs):
    spec = find(recs, DEPLOY, "llm-router")["spec"]["template"]["spec"]
    spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


CASES: list[tuple[str, Any, str, str, dict[str, Any]]] = [
    (
        "gpu-limit-missing",
        lambda r: _container(r)["resources"]["limits"].pop("nvidia.com/gpu"),
        "gpu-workloads",
        "Deployment llm-stack/llm-llama8b",
        {},
    ),
    (
        "gpu-request-differs",
        lambda r: _container(r)["resources"]["requests"].update({"nvidia.com/gpu": "2"}),
        "gpu-workloads",
        "Deployment llm-stack/llm-llama8b",
        {},
    ),
    (
        "gpu-no-toleration",
        lambda r: _engine(r).pop("tolerations"),
        "gpu-workloads",
        "Deployment llm-stack/llm-llama8b",
        {},
    ),
    (
        "gpu-no-pool",
        lambda r: _engine(r).pop("nodeSelector"),
        "gpu-workloads",
        "Deployment llm-stack/llm-llama8b",
        {},
    ),
    ("cpu-pod-on-gpu-node", _add_cpu_pod_on_gpu, "gpu-workloads", "Deployment llm-stack/llm-router", {}),
    (
        "engine-names-all-gpus",
        lambda r: _container(r).setdefault("env", []).append(ALL_GPUS),
        "gpu-visibility",
        "Deployment llm-stack/llm-llama8b",
        {},
    ),
    (
        "memory-limit-missing",
        lambda r: _container(r, "llm-router")["resources"]["limits"].pop("memory"),
        "container-resources",
        "Deployment llm-stack/llm-router",
        {},
    ),
    (
        "image-latest",
        lambda r: _container(r, "llm-router").update(image="ghcr.io/llm-stack/router:latest"),
        "pinned-images",
        "Deployment llm-stack/llm-router",
        {},
    ),
    (
        "image-untagged",
        lambda r: _container(r, "llm-router").update(image="ghcr.io/llm-stack/router"),
        "pinned-images",
        "Deployment llm-stack/llm-router",
        {},
    ),
    (
        "image-registry",
        lambda r: _container(r, "llm-router").update(image="quay.io/someone/router:1.0"),
        "pinned-images",
        "Deployment llm-stack/llm-router",
        {},
    ),
    (
        "plain-env-token",
        lambda r: _container(r)["env"].append({"name": "HF_TOKEN", "value": "abc"}),
        "no-plain-secrets",
        "Deployment llm-stack/llm-llama8b",
        {},
    ),
    (
        "token-in-configmap",
        lambda r: find(r, "kubernetes:core/v1:ConfigMap", "llm-router-config")["data"].update(
            {"extra": "hf_" + "a1B2" * 9}
        ),
        "no-plain-secrets",
        "ConfigMap llm-stack/llm-router-config",
        {},
    ),
    ("key-in-helm-values", _add_helm_with_key, "no-plain-secrets", "Release", {}),
    ("public-without-tls", _public_router, "no-open-public-endpoint", "Service llm-stack/llm-router", {}),
    (
        "public-without-api-keys",
        _no_router_secret,
        "no-open-public-endpoint",
        "Service llm-stack/llm-router",
        {},
    ),
    (
        "engines-no-netpol",
        lambda r: r.remove(next(x for x in r if x["name"] == "llm-netpol-engines")),
        "engines-isolated",
        "Deployment llm-stack/llm-llama",
        {},
    ),
    (
        "engines-open-cidr",
        lambda r: _engine_netpol(r)["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}),
        "engines-isolated",
        "NetworkPolicy llm-stack/llm-engines",
        {},
    ),
    (
        "engines-rule-without-from",
        lambda r: _engine_netpol(r)["ingress"][0].pop("from"),
        "engines-isolated",
        "NetworkPolicy llm-stack/llm-engines",
        {},
    ),
    (
        "engines-any-namespace",
        lambda r: _engine_netpol(r)["ingress"][0]["from"].append({"namespaceSelector": {}}),
        "engines-isolated",
        "NetworkPolicy llm-stack/llm-engines",
        {},
    ),
    (
        "node-group-no-max",
        lambda r: find(r, NODE_GROUP, "pools-a100")["scalingConfig"].pop("maxSize"),
        "node-pool-max-size",
        "NodeGroup pools-a100",
        {},
    ),
    ("karpenter-no-limits", _add_karpenter_pool, "node-pool-max-size", "NodePool gpu", {}),
    (
        "launch-template-unencrypted",
        lambda r: find(r, "aws:ec2/launchTemplate:LaunchTemplate", "pools-a100")["blockDeviceMappings"][0][
            "ebs"
        ].update(encrypted="false"),
        "ebs-encrypted",
        "LaunchTemplate pools-a100",
        {},
    ),
    (
        "storage-class-unencrypted",
        lambda r: find(r, "kubernetes:storage.k8s.io/v1:StorageClass", "gp3")["parameters"].pop("encrypted"),
        "ebs-encrypted",
        "StorageClass gp3",
        {},
    ),
    ("bucket-without-sse", _add_bucket, "s3-encrypted", "BucketV2 models", {}),
    (
        "eks-secrets-plain",
        lambda r: find(r, "aws:eks/cluster:Cluster", "eks").pop("encryptionConfig"),
        "eks-secrets-encrypted",
        "Cluster eks",
        {},
    ),
    ("iam-star-star", _add_wildcard_policy, "iam-no-wildcard-admin", "RolePolicy too-broad", {}),
    (
        "gpu-pool-several-zones",
        lambda r: find(r, NODE_GROUP, "pools-a100").update(
            subnetIds=["vpc-private-us-east-1a-id", "vpc-private-us-east-1b-id"]),
        "gpu-pool-zones",
        "NodeGroup pools-a100",
        {},
    ),
    ("k8s-extended", lambda r: None, "k8s-extended-support", "Cluster eks", {"today": "2027-04-01"}),
    (
        "over-budget",
        lambda r: None,
        "gpu-budget",
        "GPU pools at max size cost $164.70/h",
        {"gpuBudgetUsdPerHour": 100},
    ),
    (
        "unpriced-gpu",
        lambda r: find(r, NODE_GROUP, "pools-a100").update(instanceTypes=["p9x.unpriced"]),
        "gpu-budget",
        "NodeGroup pools-a100",
        {},
    ),
]


@pytest.mark.parametrize(
    ("edit", "policy", "names", "overrides"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_resource_is_rejected_by_its_policy(edit, policy, names, overrides):
    """The edit makes prod violate exactly `policy`; the message names the resource and a fix."""
    recs = records("prod")
    edit(recs)
    findings = run(recs, stack_config("prod", **overrides))
    assert {f.policy for f in findings} == {policy}, [f.message for f in findings]
    assert all(names in f.message and "fix:" in f.message for f in findings), [f.message for f in findings]


def test_every_policy_has_a_bad_case():
    """Each of the pack's 15 policies rejects at least one case above."""
    from policies.guardrails.registry import GUARDRAILS

    assert {c[2] for c in CASES} == {g.name for g in GUARDRAILS}
    assert len(CASES) == 30
