"""The cluster side, as the program renders it: custom resources are created only after the
Helm release that installs their CRDs is ready (a PodMonitor, PrometheusRule, ScaledObject or
TriggerAuthentication sent earlier is refused: no such kind), a LoadBalancer Service only after
the load balancer controller's release, and every controller that would read instance metadata
is given the region (and VPC) instead: the nodes answer IMDS to one hop, so pods cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.stackfile import read_stack_file

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "kubernetes:helm.sh/v3:Release"
CRD_CHARTS = {"monitoring.coreos.com": "kube-prometheus-stack", "keda.sh": "keda"}


def _releases(mocks) -> dict:
    return {r.inputs["chart"]: r for r in mocks.of_type(RELEASE)}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_custom_resources_wait_for_their_crds_release(run_program, stack):
    """Every monitoring.coreos.com and keda.sh object depends on the release installing its CRD,
    which Pulumi awaits (no skipAwait: a Release is done when its objects are ready, pulumi-kubernetes
    helm/v3 Release); so does dcgm-exporter's release, whose chart creates a ServiceMonitor."""
    mocks = run_program(read_stack_file(ROOT, stack))
    releases = _releases(mocks)
    checked = 0
    for resource in mocks.resources:
        group = resource.type.removeprefix("kubernetes:").split("/")[0]
        if group in CRD_CHARTS:
            release = releases[CRD_CHARTS[group]]
            assert release.urn in resource.depends_on, (resource.type, resource.name)
            assert not release.inputs.get("skipAwait")  # Pulumi waits for the release's objects
            checked += 1
    assert releases["kube-prometheus-stack"].urn in releases["dcgm-exporter"].depends_on
    assert checked >= 4  # two PodMonitors, the rules, a ScaledObject at least


def test_load_balancer_services_wait_for_the_controller(run_program):
    """Prod's internal NLB Service is created after the controller's release is ready."""
    mocks = run_program(read_stack_file(ROOT, "prod"))
    controller = _releases(mocks)["aws-load-balancer-controller"]
    balanced = [s for s in mocks.of_type("kubernetes:core/v1:Service")
                if s.inputs["spec"].get("type") == "LoadBalancer"]
    assert len(balanced) == 1 and all(controller.urn in s.depends_on for s in balanced)


def test_controllers_get_region_and_vpc_instead_of_imds(run_program):
    """Hop limit 1 on every launch template; the load balancer controller gets the region and the
    VPC id, the cluster autoscaler the region."""
    mocks = run_program(read_stack_file(ROOT, "prod"))
    templates = mocks.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert templates and {t.inputs["metadataOptions"]["httpPutResponseHopLimit"] for t in templates} == {1}
    releases = _releases(mocks)
    lbc = releases["aws-load-balancer-controller"].inputs["values"]
    assert lbc["region"] == "us-east-1" and lbc["vpcId"] == "vpc-id"  # the mocks' id of the stack's VPC
    assert releases["cluster-autoscaler"].inputs["values"]["awsRegion"] == "us-east-1"
