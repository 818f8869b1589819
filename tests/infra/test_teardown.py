"""`pulumi destroy` on a mode-eks stack: Prometheus's volume is released while the EBS CSI driver
still runs, and what the cluster created outside Pulumi's state can be found afterwards."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from infra.aws.teardown import VOLUME_TAG, sweeps
from infra.program import after_destroy
from infra.stackfile import read_stack_file
from stack_components.monitoring.helm import PVC_RETENTION

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "kubernetes:helm.sh/v3:Release"
EBS_CSI = "addons-aws-ebs-csi-driver"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_prometheus_release_goes_before_the_ebs_csi_addon(run_program, stack):
    """kube-prometheus-stack depends on the EBS CSI add-on (so destroy deletes it first) and its
    claim is deleted with the StatefulSet, not left for a later namespace deletion."""
    mocks = run_program(read_stack_file(ROOT, stack))
    (addon,) = [r for r in mocks.of_type("aws:eks/addon:Addon") if r.name == EBS_CSI]
    (kps,) = [r for r in mocks.of_type(RELEASE) if r.inputs["chart"] == "kube-prometheus-stack"]
    assert addon.urn in kps.depends_on
    spec = kps.inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["persistentVolumeClaimRetentionPolicy"] == PVC_RETENTION == {
        "whenDeleted": "Delete", "whenScaled": "Retain"}
    (gp3,) = mocks.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert gp3.inputs["parameters"]["tagSpecification_1"] == f"{VOLUME_TAG}=llm-stack-{stack}"


def test_sweeps_find_tagged_volumes_and_cached_repositories():
    """The after-destroy commands list the cluster's tagged volumes, and the pull-through cache's
    repositories only when there is a cache."""
    without = sweeps(cluster_name="c1", region="us-west-2", pull_through_cache=False)
    with_cache = sweeps(cluster_name="c1", region="us-west-2", pull_through_cache=True)
    assert len(without) == 1 and "Name=tag:llm-stack/cluster,Values=c1" in without[0]
    assert "--region us-west-2" in without[0]
    assert len(with_cache) == 2 and "'docker-hub/'" in with_cache[1]
    assert "delete-repository --force" in with_cache[1]


def test_after_destroy_only_in_mode_eks(raw):
    """Mode existing creates no volumes class nor cache of its own: no afterDestroy output."""
    from infra.config import parse_stack_config

    config = parse_stack_config(raw("staging"))
    assert after_destroy(config) == sweeps(cluster_name=config.cluster.name, region=config.cluster.eks.region,
                                           pull_through_cache=False)
    cluster = dataclasses.replace(config.cluster, mode="existing", eks=None)
    existing = dataclasses.replace(config, cluster=cluster)
    assert after_destroy(existing) is None
