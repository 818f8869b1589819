"""Weights from an S3 model store instead of the Hugging Face hub: the engine pod's
ServiceAccount (annotated with a read-only IAM role, IRSA) and the init container that copies
`s3://<bucket>/<prefix>/<model>/<revision>/` into the model cache once per node, before vLLM
starts and loads the local directory. Pure builders over a frozen value."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

import pulumi

from stack_components import _validate as v
from stack_components import kube

AWS_CLI_IMAGE = "amazon/aws-cli:2.17.64"
"""The AWS CLI v2 image, pinned by tag. Its entrypoint is `/usr/local/bin/aws`; the init container
replaces it with `/bin/sh -c` (the image is Amazon Linux based) to test the marker first."""
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
"""The ServiceAccount annotation EKS's pod identity webhook reads (IRSA; EKS user guide,
"Assign IAM roles to Kubernetes service accounts")."""
COMPLETE_MARKER = ".llm-stack-complete"
"""Written into the model directory after a full copy: its presence skips the copy."""
LOCAL_SUBDIR = "s3"
"""Under the model cache's mount path: `<mount>/s3/<model>/<revision>`."""
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

# `$1` source URL, `$2` destination directory (positional: nothing from the config is spliced
# into the script). `aws s3 sync` copies only what is missing or changed, so a copy cut short by
# a restart resumes; the marker is written last.
SYNC_SCRIPT = (
    'set -eu; if [ -f "$2/' + COMPLETE_MARKER + '" ]; then echo "model cached in $2"; exit 0; fi; '
    'mkdir -p "$2"; aws s3 sync --no-progress --only-show-errors "$1" "$2"; '
    'touch "$2/' + COMPLETE_MARKER + '"'
)


@dataclass(frozen=True, kw_only=True)
class ModelStore:
    """Where an engine's weights come from when not the Hugging Face hub: an S3 prefix read
    through an IAM role the pod's ServiceAccount assumes (IRSA)."""

    bucket: str
    """S3 bucket holding `<prefix>/<model>/<revision>/` directories."""
    prefix: str
    """Key prefix (no leading or trailing '/')."""
    region: str
    """The bucket's region (AWS_REGION of the copying container)."""
    service_account: str
    """Name of the ServiceAccount the engine creates and runs as (the role trusts this name)."""
    role_arn: pulumi.Input[str]
    """ARN of the read-only role, annotated on the ServiceAccount."""
    image: str = AWS_CLI_IMAGE
    """Image of the copying init container (must provide `/bin/sh` and `aws`)."""
    cpu: float = 2.0
    """CPU cores of the copying init container (the copy is parallel; more cores, faster)."""
    memory_gib: float = 2.0
    """Memory of the copying init container."""

    def __post_init__(self) -> None:
        v.non_empty("model_store.bucket", self.bucket)
        parts = self.prefix.split("/") if isinstance(self.prefix, str) else [""]
        v.require(all(p and p not in (".", "..") for p in parts), "model_store.prefix", self.prefix,
                  "must be a key prefix without leading or trailing '/', '//' or '.'/'..' segments")
        v.require(isinstance(self.region, str) and bool(_REGION.match(self.region)), "model_store.region",
                  self.region, "must be an AWS region name such as 'us-east-1'")
        v.dns_label("model_store.service_account", self.service_account)
        v.non_empty("model_store.image", self.image)
        v.positive("model_store.cpu", self.cpu)
        v.positive("model_store.memory_gib", self.memory_gib)

    def source_url(self, model: str, revision: str) -> str:
        """`s3://bucket/prefix/<model>/<revision>/`."""
        return f"s3://{self.bucket}/{self.prefix}/{model}/{revision}/"


def local_model_dir(mount_path: str, model: str, revision: str) -> str:
    """Where the copy lands in the model cache, and the path vLLM loads."""
    return posixpath.join(mount_path, LOCAL_SUBDIR, model, revision)


def service_account_manifest(store: ModelStore, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """The engine's ServiceAccount, annotated with the role (no token automount: EKS's pod
    identity webhook patches its own projected `aws-iam-token` volume, audience sts.amazonaws.com,
    into the pod; aws/amazon-eks-pod-identity-webhook)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": kube.metadata(store.service_account, namespace, labels,
                                  {ROLE_ARN_ANNOTATION: store.role_arn}),
        "automountServiceAccountToken": False,
    }


def sync_init_container(store: ModelStore, *, model: str, revision: str, mount_path: str) -> dict[str, Any]:
    """Copy the model from S3 into the cache unless the marker says it is already complete (as
    the pod's non-root user, read-only root filesystem; HOME on the pod's /tmp emptyDir)."""
    dest = local_model_dir(mount_path, model, revision)
    return {
        "name": "model-store-sync",
        "image": store.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", SYNC_SCRIPT, "model-store-sync",
                    store.source_url(model, revision), dest],
        "env": kube.plain_env({"AWS_REGION": store.region, "HOME": "/tmp"}),
        "resources": kube.resources(cpu=store.cpu, memory_gib=store.memory_gib),
        "securityContext": kube.container_security_context(read_only_root=True),
        "volumeMounts": [{"name": "model-cache", "mountPath": mount_path},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
