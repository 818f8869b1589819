"""The guardrails' small parts: config errors, image references, what passes on purpose, the
`--policy-pack-config` document and the `llm-stack guardrails` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from guardrail_helpers import ROOT, add, find, records, run, stack_config

from infra.stackfile import read_stack_file
from policies.guardrails.config import config_from_mapping
from policies.guardrails.errors import GuardrailConfigError
from policies.guardrails.offline import pack_settings, policy_pack_config
from policies.guardrails.workloads import image_tag, normalise_image, normalise_prefix


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"gpuBudgetUsdPerHour": -1}, "gpuBudgetUsdPerHour"),
        ({"gpuBudgetUsdPerHour": "lots"}, "gpuBudgetUsdPerHour"),
        ({"instanceHourlyUsd": {"p4d.24xlarge": 0}}, "instanceHourlyUsd.p4d.24xlarge"),
        ({"allowedRegistries": "ghcr.io"}, "allowedRegistries"),
        ({"today": "yesterday"}, "today"),
        ({"budget": 3}, "budget"),
    ],
)
def test_bad_config_names_the_key_and_value(raw, key):
    """A bad pack setting fails with its key, its value and what is allowed."""
    with pytest.raises(GuardrailConfigError) as err:
        config_from_mapping(raw)
    assert err.value.key == key and key in str(err.value) and "got" in str(err.value)


def test_image_references_are_normalised():
    """Docker Hub short names gain their registry; tags and digests are read from the last part."""
    assert normalise_image("lmcache/vllm-openai:v0.3.15") == "docker.io/lmcache/vllm-openai:v0.3.15"
    assert normalise_image("busybox:1") == "docker.io/library/busybox:1"
    assert normalise_image("localhost:5000/x:1") == "localhost:5000/x:1"
    assert [normalise_prefix(p) for p in ("ghcr.io", "lmcache/", "ghcr.io/a/")] == [
        "ghcr.io/",
        "docker.io/lmcache/",
        "ghcr.io/a/",
    ]
    assert [image_tag(i) for i in ("a/b:1", "a/b", "reg:5000/b", "a/b@sha256:00")] == ["1", None, None, "@"]


def test_a_gpu_node_agent_daemonset_may_tolerate_the_gpu_taint():
    """A DaemonSet that tolerates the GPU taint without using a GPU (a metrics exporter) passes;
    the same pod spec in a Deployment squats on GPU nodes and is rejected."""
    spec = {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        "containers": [
            {
                "name": "exporter",
                "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04",
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
            }
        ],
    }
    for kind, expected in (("DaemonSet", []), ("Deployment", ["gpu-workloads"])):
        recs = records("prod")
        add(
            recs,
            f"kubernetes:apps/v1:{kind}",
            "dcgm",
            {
                "kind": kind,
                "metadata": {"name": "dcgm", "namespace": "x"},
                "spec": {"template": {"spec": spec}},
            },
        )
        assert [f.policy for f in run(recs, stack_config("prod"))] == expected


def test_public_router_with_tls_and_api_keys_passes():
    """An internet-facing router Service with an ACM certificate, whose pods mount the API-key
    Secret, is allowed."""
    recs = records("prod")
    notes = find(recs, "kubernetes:core/v1:Service", "llm-router")["metadata"]["annotations"]
    notes["service.beta.kubernetes.io/aws-load-balancer-scheme"] = "internet-facing"
    notes["service.beta.kubernetes.io/aws-load-balancer-ssl-cert"] = "arn:aws:acm:us-east-1:1:certificate/c"
    assert run(recs, stack_config("prod")) == []
    notes.pop("service.beta.kubernetes.io/aws-load-balancer-ssl-cert")
    assert [f.policy for f in run(recs, stack_config("prod"))] == ["no-open-public-endpoint"]


def test_encrypted_bucket_monitoring_peer_and_scoped_iam_pass():
    """A bucket with an SSE configuration, a monitoring-namespace peer on the engines' policy and
    an IAM policy scoped to one bucket raise nothing."""
    recs = records("prod")
    add(recs, "aws:s3/bucketV2:BucketV2", "models", {"bucket": "llm-models"})
    add(
        recs,
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
        "models-sse",
        {
            "bucket": "models-id",
            "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}],
        },
    )
    add(
        recs,
        "aws:iam/policy:Policy",
        "read-models",
        {
            "policy": json.dumps(
                {
                    "Statement": [
                        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::llm-models/*"}
                    ]
                }
            )
        },
    )
    engines = find(recs, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "llm-netpol-engines")
    engines["spec"]["ingress"][0]["from"].append(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    )
    assert run(recs, stack_config("prod")) == []
    assert len(recs) > 90


def test_policy_pack_config_gives_each_policy_its_keys_and_level():
    """The stack file's guardrails: keys become per-policy config with explicit levels."""
    document = policy_pack_config(pack_settings(read_stack_file(ROOT, "prod").config))
    assert document["gpu-budget"] == {"enforcementLevel": "advisory", "gpuBudgetUsdPerHour": 300}
    assert document["pinned-images"]["enforcementLevel"] == "mandatory"
    assert set(document) == {"gpu-budget", "pinned-images"}


def test_guardrails_command_exits_1_on_a_mandatory_violation(tmp_path):
    """`llm-stack guardrails --render-dir` passes dev's render and fails a broken copy of it,
    printing the finding."""
    (tmp_path / "resources.json").write_text(json.dumps(records("dev")))
    cmd = [
        sys.executable,
        "-c",
        "from cli import main; main()",
        "guardrails",
        "--stack",
        "dev",
        "--render-dir",
        str(tmp_path),
        "--today",
        "2026-01-01",
        "--project-dir",
        str(ROOT),
        "--pack-config-out",
        str(tmp_path / "pc.json"),
    ]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "stack dev: 15 policies, 0 mandatory and 0 advisory violations" in ok.stdout
    assert json.loads((tmp_path / "pc.json").read_text())["gpu-budget"]["gpuBudgetUsdPerHour"] == 5
    bad = records("dev")
    find(bad, "aws:eks/cluster:Cluster", "eks").pop("encryptionConfig")
    (tmp_path / "resources.json").write_text(json.dumps(bad))
    failed = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and "[mandatory] eks-secrets-encrypted" in failed.stdout
