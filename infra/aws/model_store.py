"""The S3 model store's AWS side (`llm-stack:modelStore`, EKS mode): a read-only IAM role the
engines' ServiceAccounts assume through the cluster's OIDC provider (IRSA), allowed only
`s3:ListBucket` under the prefix and `s3:GetObject` on its keys. The weights bypass the NAT
gateways through the VPC's S3 gateway endpoint, which the network always has (infra/aws/endpoints.py).
Policy documents are pure."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.iam import irsa_trust_policy, role
from stack_components.naming import object_name


def service_account_name(model_key: str) -> str:
    """The ServiceAccount of one model's engines (the role trusts exactly these names)."""
    return object_name(model_key, "model-store")


def read_policy(bucket: str, prefix: str) -> str:
    """Read-only access to `s3://bucket/prefix/...` and nothing else: list the bucket only under
    the prefix (the `s3:prefix` condition key), get objects only under it. S3 user guide,
    "Policy examples: Allow listing objects in a folder" and the `s3:prefix` condition key."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListModelPrefix", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": f"arn:aws:s3:::{bucket}",
             "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}}},
            {"Sid": "ReadModelObjects", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*"},
        ],
    }, sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class ModelStoreAccessArgs:
    """What the role needs."""

    bucket: str
    """The model bucket."""
    prefix: str
    """The key prefix the role may read."""
    namespace: str
    """Namespace of the engines' ServiceAccounts."""
    service_accounts: tuple[str, ...]
    """ServiceAccounts allowed to assume the role (one per model)."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL."""


class ModelStoreAccess(pulumi.ComponentResource):
    """The read-only IRSA role."""

    role_arn: pulumi.Output[str]
    """The role the engines' ServiceAccounts are annotated with."""

    def __init__(self, name: str, args: ModelStoreAccessArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-stack:aws:ModelStoreAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        policy = aws.iam.Policy(f"{name}-read", policy=read_policy(args.bucket, args.prefix),
                                description="llm-stack: read the model store prefix", opts=child)
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
            lambda v: irsa_trust_policy(v[0], v[1], args.namespace, args.service_accounts))
        reader = role(f"{name}-reader", trust, [policy.arn], description="llm-stack model store (IRSA)",
                      parent=self)
        # the role's users must wait for its policy attachment, not only the role
        self.role_arn = pulumi.Output.all(reader.arn, *[r.urn for r in reader.ready]).apply(lambda v: v[0])
        self.register_outputs({"roleArn": self.role_arn})
