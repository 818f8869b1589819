"""Pure AWS building blocks: subnet plan, node user data, kubeconfig, IAM documents, pool labels/taints."""

from __future__ import annotations

import base64
import ipaddress
import json

from infra.aws.addons import device_plugin_values, gp3_storage_class
from infra.aws.iam import irsa_trust_policy, service_trust_policy
from infra.aws.kubeconfig import render_kubeconfig
from infra.aws.node_pools import launch_template_args, node_labels, node_taints, zone_groups
from infra.aws.subnets import plan_subnets
from infra.aws.user_data import node_config, user_data
from infra.config.pools import NODE_POOL_LABEL, NodePoolConfig, TaintConfig


def test_subnets_are_disjoint_and_inside_the_vpc():
    """Every planned subnet lies in the VPC and none overlap (for 2-4 zones, /16 and /20)."""
    checked = 0
    for cidr in ("10.20.0.0/16", "10.30.16.0/20"):
        vpc = ipaddress.IPv4Network(cidr)
        for count in (2, 3, 4):
            plans = plan_subnets(cidr, tuple(f"us-east-1{z}" for z in "abcd"[:count]))
            nets = [ipaddress.IPv4Network(c) for p in plans for c in (p.private_cidr, p.public_cidr)]
            assert all(n.subnet_of(vpc) for n in nets)
            assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
            checked += len(nets)
    assert checked == 2 * 2 * (2 + 3 + 4)


def test_private_subnets_are_large():
    """A /16 VPC gives /19 private subnets (pod IPs) and /24 public ones."""
    plan = plan_subnets("10.20.0.0/16", ("us-east-1a", "us-east-1b"))[0]
    assert (plan.private_cidr, plan.public_cidr) == ("10.20.0.0/19", "10.20.224.0/24")


def test_nvme_pools_get_raid0_local_storage():
    """Instances with NVMe get nodeadm's RAID0 local storage; others do not."""
    assert "strategy: RAID0" in node_config(nvme=True)
    assert "localStorage" not in node_config(nvme=False)
    decoded = base64.b64decode(user_data(nvme=True)).decode()
    assert "Content-Type: application/node.eks.aws" in decoded and "kind: NodeConfig" in decoded


def test_gpu_pool_labels_and_taints():
    """GPU pools carry the pool label, the GPU-present label and the GPU taint before extra taints."""
    pool = NodePoolConfig(instance_type="p4de.24xlarge", min_size=0, desired_size=1, max_size=2,
                          labels={"tier": "serving"}, taints=(TaintConfig(key="dedicated", value="llm"),))
    assert node_labels("a100", pool) == {NODE_POOL_LABEL: "a100", "nvidia.com/gpu.present": "true",
                                         "k8s.amazonaws.com/accelerator": "nvidia-a100", "tier": "serving"}
    assert node_taints(pool) == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"},
                                 {"key": "dedicated", "value": "llm", "effect": "NO_SCHEDULE"}]


def test_cpu_pool_has_no_gpu_taint():
    """A CPU pool gets neither the GPU taint nor the GPU label."""
    pool = NodePoolConfig(instance_type="m6i.xlarge", min_size=1, desired_size=1, max_size=2)
    assert node_taints(pool) == [] and "nvidia.com/gpu.present" not in node_labels("system", pool)


def test_launch_template_uses_encrypted_gp3_and_imdsv2():
    """The root disk is encrypted gp3 of the pool's size; IMDSv2 is required."""
    pool = NodePoolConfig(instance_type="g5.2xlarge", min_size=0, desired_size=1, max_size=1, disk_gib=150)
    args = launch_template_args("gpu", pool)
    ebs = args["block_device_mappings"][0]["ebs"]
    assert (ebs["volume_type"], ebs["volume_size"], ebs["encrypted"]) == ("gp3", 150, "true")
    assert args["metadata_options"]["http_tokens"] == "required"


def test_kubeconfig_uses_eks_get_token():
    """The kubeconfig points at the endpoint and authenticates with `aws eks get-token` for the region."""
    config = json.loads(render_kubeconfig(cluster_name="c", endpoint="https://x", ca_data="Q0E=",
                                          region="us-east-1"))
    assert config["clusters"][0]["cluster"]["server"] == "https://x"
    assert config["users"][0]["user"]["exec"]["args"][:4] == ["--region", "us-east-1", "eks", "get-token"]


def test_irsa_trust_is_scoped_to_one_service_account():
    """The IRSA trust policy names the issuer's sub and aud conditions for one service account."""
    doc = json.loads(irsa_trust_policy("arn:oidc", "https://oidc.eks/id/X", "kube-system", "ebs-csi"))
    cond = doc["Statement"][0]["Condition"]["StringEquals"]
    assert cond == {"oidc.eks/id/X:sub": "system:serviceaccount:kube-system:ebs-csi",
                    "oidc.eks/id/X:aud": "sts.amazonaws.com"}
    assert json.loads(service_trust_policy("ec2.amazonaws.com"))["Statement"][0]["Action"] == "sts:AssumeRole"


def test_device_plugin_only_on_gpu_nodes():
    """The device plugin selects GPU nodes and tolerates the GPU taint."""
    values = device_plugin_values()
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]


def test_gp3_volumes_are_tagged_with_their_cluster():
    """Every volume the default StorageClass provisions carries `llm-stack/cluster=<name>`
    (the EBS CSI driver's tagSpecification parameter), so one left by `pulumi destroy` is found."""
    assert gp3_storage_class("llm-stack-dev")["parameters"] == {
        "type": "gp3", "encrypted": "true", "tagSpecification_1": "llm-stack/cluster=llm-stack-dev"}


def test_a_multi_zone_pool_gets_one_group_per_zone_sharing_its_sizes():
    """Prod's system pool (2/3/4 over three zones): a group per zone named after it, min and
    desired summing to the pool's, every zone allowed a node; a single-zone pool keeps its name."""
    zones = ("us-east-1a", "us-east-1b", "us-east-1c")
    system = NodePoolConfig(instance_type="r6i.8xlarge", min_size=2, desired_size=3, max_size=4)
    groups = zone_groups("system", system, zones)
    assert [(name, zone) for name, zone, _ in groups] == [(f"system-{z}", z) for z in zones]
    assert [tuple(s.values()) for _, _, s in groups] == [(1, 1, 2), (1, 1, 1), (0, 1, 1)]
    small = NodePoolConfig(instance_type="m6i.xlarge", min_size=1, desired_size=1, max_size=2)
    assert [s["max_size"] for _, _, s in zone_groups("system", small, zones)] == [1, 1, 1]
    gpu = NodePoolConfig(instance_type="p4de.24xlarge", min_size=0, desired_size=0, max_size=6)
    assert zone_groups("a100", gpu, zones[:1]) == [
        ("a100", "us-east-1a", {"min_size": 0, "desired_size": 0, "max_size": 6})]
