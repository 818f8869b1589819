"""IAM: roles for the cluster, the nodes and IRSA service accounts; policy documents are pure."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

MANAGED = "arn:aws:iam::aws:policy/"
CLUSTER_POLICIES = (MANAGED + "AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    MANAGED + "AmazonEKSWorkerNodePolicy",
    MANAGED + "AmazonEKS_CNI_Policy",
    MANAGED + "AmazonEC2ContainerRegistryReadOnly",
    MANAGED + "AmazonSSMManagedInstanceCore",
)
EBS_CSI_POLICY = MANAGED + "service-role/AmazonEBSCSIDriverPolicy"


def service_trust_policy(service: str) -> str:
    """Trust policy letting an AWS service (`eks.amazonaws.com`, `ec2.amazonaws.com`) assume a role."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                       "Action": ["sts:AssumeRole", "sts:TagSession"] if service.startswith("eks")
                       else "sts:AssumeRole"}],
    }, sort_keys=True)


def irsa_trust_policy(provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> str:
    """Trust policy for one Kubernetes service account through the cluster's OIDC provider (IRSA)."""
    issuer = issuer_url.removeprefix("https://")
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{issuer}:aud": "sts.amazonaws.com",
            }},
        }],
    }, sort_keys=True)


def role(name: str, trust_policy: pulumi.Input[str], policies: Sequence[str], *, description: str,
         parent: pulumi.Resource) -> aws.iam.Role:
    """A role with its managed policies attached (one attachment per policy, named after it)."""
    created = aws.iam.Role(name, assume_role_policy=trust_policy, description=description,
                           opts=pulumi.ResourceOptions(parent=parent))
    for arn in policies:
        aws.iam.RolePolicyAttachment(f"{name}-{arn.rsplit('/', 1)[-1]}", role=created.name, policy_arn=arn,
                                     opts=pulumi.ResourceOptions(parent=created))
    return created
