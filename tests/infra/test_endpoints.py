"""VPC endpoints (issue 23 item 10): the free S3 gateway endpoint on every private route table in
every EKS stack; ECR api/dkr and STS interface endpoints only with `cluster.eks.interfaceEndpoints`,
in every private subnet behind HTTPS from the VPC, and priced in the capacity output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.aws.endpoints import INTERFACE_SERVICES, service_name
from infra.config import parse_stack_config
from infra.mocks import RecordingMocks
from infra.program import capacity_output
from infra.stackfile import STACKS, parse_stack_yaml, raw_project_config, read_stack_file

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def _with_interface_endpoints(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    document["config"]["llm-stack:cluster"]["eks"]["interfaceEndpoints"] = True
    return document


def _private(mocks: RecordingMocks, kind: str) -> list[str]:
    """Ids (`<name>-id` under the mocks) of the private route tables or subnets."""
    typ = "aws:ec2/routeTable:RouteTable" if kind == "tables" else "aws:ec2/subnet:Subnet"
    return sorted(f"{r.name}-id" for r in mocks.of_type(typ) if "-private-" in r.name)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_has_the_s3_gateway_on_each_private_route_table(run_program, stack):
    """Each shipped stack: one S3 gateway endpoint in its region, routed from every private route
    table (ECR layers and model weights skip NAT), and no interface endpoint by default."""
    mocks = run_program(read_stack_file(ROOT, stack))
    region = parse_stack_config(raw_project_config(read_stack_file(ROOT, stack))).cluster.eks.region  # type: ignore[union-attr]
    (s3,) = mocks.of_type(ENDPOINT)
    assert s3.inputs["serviceName"] == service_name(region, "s3") == f"com.amazonaws.{region}.s3"
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    tables = _private(mocks, "tables")
    assert tables and sorted(s3.inputs["routeTableIds"]) == tables


def test_interface_endpoints_are_opt_in_in_every_private_subnet(run_program):
    """interfaceEndpoints: ECR api, ECR dkr and STS, Interface type with private DNS, in each
    private subnet, behind a security group admitting only HTTPS from the VPC's CIDR."""
    mocks = run_program(parse_stack_yaml(_with_interface_endpoints("prod")))
    interface = {e.inputs["serviceName"]: e for e in mocks.of_type(ENDPOINT)
                 if e.inputs["vpcEndpointType"] == "Interface"}
    assert set(interface) == {f"com.amazonaws.us-east-1.{s}" for s in INTERFACE_SERVICES}
    (group,) = [g for g in mocks.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "vpc-endpoints"]
    (rule,) = [r for r in mocks.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
               if r.name == "vpc-endpoints-https"]
    ports = (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["cidrIpv4"])
    assert ports == (443, 443, "10.20.0.0/16")
    subnets = _private(mocks, "subnets")
    for endpoint in interface.values():
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert sorted(endpoint.inputs["subnetIds"]) == subnets and len(subnets) == 3
        assert endpoint.inputs["securityGroupIds"] == [f"{group.name}-id"]


def test_interface_endpoints_are_priced():
    """Opted in, the capacity output bills 3 endpoints × 3 zones × $0.01/h and $0.01/GB."""
    raw = raw_project_config(parse_stack_yaml(_with_interface_endpoints("prod")))
    out = capacity_output(parse_stack_config(raw))
    (line,) = [f for f in out["fixed"] if f["item"].startswith("interface endpoints")]  # type: ignore[union-attr]
    assert line["usdPerHourMin"] == pytest.approx(0.09)
    assert out["perUnitUsd"]["interfaceEndpointPerGB"] == 0.01  # type: ignore[index]
    plain = capacity_output(parse_stack_config(raw_project_config(read_stack_file(ROOT, "prod"))))
    assert not [f for f in plain["fixed"] if f["item"].startswith("interface")]  # type: ignore[union-attr]
