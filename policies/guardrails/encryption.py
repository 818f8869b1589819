"""Data at rest is encrypted: EBS volumes (launch templates, volumes, EBS StorageClasses), S3
buckets (an explicit server-side encryption configuration) and the EKS cluster's Secrets
(envelope encryption with a KMS key)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from policies.guardrails.config import GuardrailConfig
from policies.guardrails.objects import Resource, dig, mapping, sequence

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EBS_VOLUME = "aws:ebs/volume:Volume"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
EBS_CSI = "ebs.csi.aws.com"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
SSE_CONFIGS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _unencrypted_class(res: Resource) -> bool:
    parameters = mapping(res.props.get("parameters"))
    return res.props.get("provisioner") == EBS_CSI and not _true(parameters.get("encrypted"))


def check_ebs_encrypted(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """Every EBS volume a launch template, an `ebs.Volume` or an EBS CSI StorageClass creates is encrypted."""
    if res.type == LAUNCH_TEMPLATE:
        for i, mapping_ in enumerate(map(mapping, sequence(res.props.get("blockDeviceMappings")))):
            ebs = mapping(mapping_.get("ebs"))
            if ebs and not _true(ebs.get("encrypted")):
                yield (
                    f"{res.label} blockDeviceMappings[{i}] ({mapping_.get('deviceName')}) is not encrypted; "
                    f"fix: set ebs.encrypted: true"
                )
    elif res.type == EBS_VOLUME and not _true(res.props.get("encrypted")):
        yield f"{res.label} is not encrypted; fix: set encrypted: true"
    elif res.type == STORAGE_CLASS and _unencrypted_class(res):
        yield f'{res.label} provisions unencrypted EBS volumes; fix: set parameters.encrypted: "true"'


def check_eks_secrets_encrypted(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """An EKS cluster encrypts its Secrets with a KMS key."""
    if res.type != EKS_CLUSTER:
        return
    encryption = mapping(res.props.get("encryptionConfig"))
    if "secrets" not in list(sequence(encryption.get("resources"))) or not dig(
        encryption, "provider", "keyArn"
    ):
        yield (
            f"{res.label} does not encrypt Kubernetes Secrets; fix: set encryptionConfig "
            f"{{resources: [secrets], provider: {{keyArn: <KMS key ARN>}}}}"
        )


def _bucket_refs(res: Resource) -> set[str]:
    return {str(v) for v in (res.name, res.props.get("bucket"), res.props.get("id")) if v}


def check_s3_encrypted(resources: Sequence[Resource], config: GuardrailConfig) -> Iterator[tuple[str, str]]:
    """Every S3 bucket has an explicit server-side encryption configuration (inline, or a
    BucketServerSideEncryptionConfiguration naming it)."""
    configured = {str(r.props.get("bucket")) for r in resources if r.type in SSE_CONFIGS}
    for bucket in (r for r in resources if r.type in BUCKETS):
        inline = mapping(bucket.props.get("serverSideEncryptionConfiguration"))
        named = any(ref == c or c.startswith(f"{ref}-") for ref in _bucket_refs(bucket) for c in configured)
        if not inline and not named:
            yield (
                bucket.urn,
                (
                    f"{bucket.label} has no server-side encryption configuration; fix: add an "
                    f"aws.s3.BucketServerSideEncryptionConfiguration (aws:kms or AES256) for it"
                ),
            )
