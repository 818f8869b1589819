"""IAM: roles for the cluster, the nodes and IRSA service accounts; policy documents are pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

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


def irsa_trust_policy(provider_arn: str, issuer_url: str, namespace: str,
                      service_account: str | Sequence[str]) -> str:
    """Trust policy for Kubernetes service accounts (one, or several: IAM matches a list value
    of a `StringEquals` key against any of its items) through the cluster's OIDC provider (IRSA)."""
    issuer = issuer_url.removeprefix("https://")
    accounts = [service_account] if isinstance(service_account, str) else sorted(service_account)
    subjects = [f"system:serviceaccount:{namespace}:{a}" for a in accounts]
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{issuer}:sub": subjects[0] if len(subjects) == 1 else subjects,
                f"{issuer}:aud": "sts.amazonaws.com",
            }},
        }],
    }, sort_keys=True)


@dataclass(frozen=True)
class AttachedRole:
    """A role and its policy attachments: whatever uses the role's permissions depends on `ready`
    (Pulumi expands `depends_on` into children only for components, so the role alone is not enough)."""

    role: aws.iam.Role
    """The role."""
    attachments: tuple[aws.iam.RolePolicyAttachment, ...]
    """One attachment per policy."""

    @property
    def arn(self) -> pulumi.Output[str]:
        """The role's ARN."""
        return self.role.arn

    @property
    def ready(self) -> list[pulumi.Resource]:
        """The role and every attachment: the `depends_on` of the role's users."""
        return [self.role, *self.attachments]


def role(name: str, trust_policy: pulumi.Input[str], policies: Sequence[pulumi.Input[str]], *,
         description: str, parent: pulumi.Resource) -> AttachedRole:
    """A role with its policies attached (one attachment per policy, named after the managed
    policy's name, or `-inline-N` for a policy given as an Output)."""
    created = aws.iam.Role(name, assume_role_policy=trust_policy, description=description,
                           opts=pulumi.ResourceOptions(parent=parent))
    attachments = tuple(
        aws.iam.RolePolicyAttachment(_attachment_name(name, arn, i), role=created.name, policy_arn=arn,
                                     opts=pulumi.ResourceOptions(parent=created))
        for i, arn in enumerate(policies))
    return AttachedRole(created, attachments)


def _attachment_name(role_name: str, arn: pulumi.Input[str], index: int) -> str:
    return f"{role_name}-{arn.rsplit('/', 1)[-1]}" if isinstance(arn, str) else f"{role_name}-policy-{index}"
