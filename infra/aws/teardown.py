"""What `pulumi destroy` cannot delete, and how to find it afterwards (pure).

Two kinds of AWS resource are created by the cluster, not by this program, so Pulumi has no
state for them:
- **EBS volumes the EBS CSI driver provisions** (Prometheus's). The release that owns the claim
  is deleted before the EBS CSI add-on (it depends on the add-ons), and Prometheus's claim is
  deleted with its StatefulSet (`persistentVolumeClaimRetentionPolicy.whenDeleted: Delete`,
  prometheus-operator's `CommonPrometheusFields`), so the driver receives the delete while it
  still runs. But it deletes the volume asynchronously (after the pod's grace period and the
  detach), and if the add-on or the cluster goes first the `Delete` reclaim never runs: the
  volume stays, `available` and billed (aws-solutions-library-samples/global-capacity-
  orchestrator-on-aws #297, Smana/cloud-native-ref #1669 describe exactly this). The gp3
  StorageClass therefore tags every volume it provisions with `llm-stack/cluster=<name>`
  (the driver's `tagSpecification_<n>` StorageClass parameters, aws-ebs-csi-driver
  docs/tagging.md, v1.6.0 and later), so what is left can be found and deleted.
- **ECR repositories the Docker Hub pull-through cache creates** on the first pull of each image
  (`docker-hub/...`; ECR user guide, "Pulling an image with a pull through cache rule"): deleting
  the cache rule leaves them and their images.

`sweeps` gives the commands that list (and then delete) both; the program exports them as the
stack output `afterDestroy` and the README's "Destroying a stack" repeats them.
"""

from __future__ import annotations

from infra.aws.registry import DOCKER_HUB_PREFIX

VOLUME_TAG = "llm-stack/cluster"
"""Tag key on every EBS volume the gp3 StorageClass provisions (value: the cluster name)."""


def volume_tag_parameters(cluster_name: str) -> dict[str, str]:
    """StorageClass parameters tagging each provisioned volume with the cluster it belongs to."""
    return {"tagSpecification_1": f"{VOLUME_TAG}={cluster_name}"}


def sweeps(*, cluster_name: str, region: str, pull_through_cache: bool) -> list[str]:
    """Commands to run after `pulumi destroy`: each lists what the cluster created and Pulumi
    could not delete (a volume still `available`, a cached repository), for deletion by hand."""
    volumes = (f"aws ec2 describe-volumes --region {region} "
               f"--filters Name=tag:{VOLUME_TAG},Values={cluster_name} --query 'Volumes[].VolumeId'"
               " --output text"
               "  # then: aws ec2 delete-volume --volume-id <id>")
    out = [volumes]
    if pull_through_cache:
        out.append(f"aws ecr describe-repositories --region {region} --query \"repositories[?starts_with("
                   f"repositoryName, '{DOCKER_HUB_PREFIX}/')].repositoryName\" --output text"
                   "  # then: aws ecr delete-repository --force --repository-name <name>")
    return out
