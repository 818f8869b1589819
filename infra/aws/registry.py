"""An ECR pull-through cache for Docker Hub: images pulled through NAT from Docker Hub hit its
anonymous rate limits; through the cache, nodes pull from ECR and Docker Hub sees one
authenticated pull per image.

Sources (Amazon ECR user guide): CreatePullThroughCacheRule (Docker Hub upstream
`registry-1.docker.io`; the credential is a Secrets Manager secret named `ecr-pullthroughcache/...`
in the same account and region), "Pulling an image with a pull through cache rule"
(`<account>.dkr.ecr.<region>.amazonaws.com/docker-hub/<repository>:<tag>`, official images under
`docker-hub/library/`), "IAM permissions required to sync an upstream registry" (the first pull
creates the repository and imports the image).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

DOCKER_HUB_PREFIX = "docker-hub"
DOCKER_HUB_URL = "registry-1.docker.io"


def cache_fill_policy(region: str) -> str:
    """Lets the node role create cached repositories under the prefix and import upstream images
    (AmazonEC2ContainerRegistryReadOnly only reads)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
        "Resource": f"arn:aws:ecr:{region}:*:repository/{DOCKER_HUB_PREFIX}/*",
    }]}, sort_keys=True)


def mirror_prefix(account_id: str, region: str) -> str:
    """Where Docker Hub images are pulled from through the cache (append `<repository>:<tag>`)."""
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com/{DOCKER_HUB_PREFIX}/"


def docker_hub_cache(name: str, *, region: str, credential_arn: str, node_role: aws.iam.Role,
                     parent: pulumi.Resource) -> aws.ecr.PullThroughCacheRule:
    """The cache rule and the node role's permission to fill it."""
    child = pulumi.ResourceOptions(parent=parent)
    aws.iam.RolePolicy(f"{name}-fill", role=node_role.name, policy=cache_fill_policy(region), opts=child)
    return aws.ecr.PullThroughCacheRule(name, ecr_repository_prefix=DOCKER_HUB_PREFIX,
                                        upstream_registry_url=DOCKER_HUB_URL, credential_arn=credential_arn,
                                        opts=child)
