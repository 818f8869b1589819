"""VPC endpoints: the S3 gateway endpoint on every private route table (always: it is free, and ECR
serves image layers from S3, so a 70B engine's weights and images stop paying NAT data), and, with
`cluster.eks.interfaceEndpoints`, interface endpoints for ECR (api, dkr) and STS in every private
subnet (billed per endpoint per zone-hour and per GB: infra/aws/bill.py).

Service names and rules: VPC user guide, "Gateway endpoints for Amazon S3" (`com.amazonaws.<region>.s3`,
routes in the chosen route tables; a route table holds one route per service prefix list, so the
stack makes one S3 endpoint); ECR user guide, "Amazon ECR interface VPC endpoints (AWS PrivateLink)"
(`com.amazonaws.<region>.ecr.api` and `.ecr.dkr`, both needed to pull; the endpoints' security
group must allow 443 from the private subnets; layers still come from S3; a pull-through cache's
first pull of an image still needs the NAT route, which stays). Resource arguments as the
installed pulumi-aws SDK's `aws.ec2.VpcEndpoint` takes them (`vpc_endpoint_type`, `route_table_ids`,
`subnet_ids`, `security_group_ids`, `private_dns_enabled`)."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

INTERFACE_SERVICES = ("ecr.api", "ecr.dkr", "sts")
"""The interface endpoints `interfaceEndpoints` adds: image pulls from ECR and IRSA's STS calls."""
HTTPS = 443


def service_name(region: str, service: str) -> str:
    """`com.amazonaws.<region>.<service>`."""
    return f"com.amazonaws.{region}.{service}"


def interface_endpoint_count(enabled: bool) -> int:
    """Interface endpoints the stack creates (each billed in every zone it has a subnet in)."""
    return len(INTERFACE_SERVICES) if enabled else 0


def s3_gateway(name: str, *, region: str, vpc_id: pulumi.Input[str],
               route_table_ids: Sequence[pulumi.Input[str]], parent: pulumi.Resource) -> aws.ec2.VpcEndpoint:
    """The S3 gateway endpoint; it was the model store's until issue 23 (the alias keeps it in place)."""
    store = pulumi.create_urn("model-store", "llm-stack:aws:ModelStoreAccess")
    old = pulumi.Alias(name="model-store-s3", parent=store)
    return aws.ec2.VpcEndpoint(
        f"{name}-s3", vpc_id=vpc_id, service_name=service_name(region, "s3"), vpc_endpoint_type="Gateway",
        route_table_ids=list(route_table_ids), tags={"Name": f"{name}-s3"},
        opts=pulumi.ResourceOptions(parent=parent, aliases=[old]))


def interface_endpoints(name: str, *, region: str, vpc_id: pulumi.Input[str], vpc_cidr: str,
                        subnet_ids: Sequence[pulumi.Input[str]],
                        parent: pulumi.Resource) -> list[aws.ec2.VpcEndpoint]:
    """ECR api/dkr and STS endpoints with private DNS in the private subnets, behind a security group
    that admits HTTPS from the VPC only."""
    child = pulumi.ResourceOptions(parent=parent)
    group = aws.ec2.SecurityGroup(f"{name}-endpoints", vpc_id=vpc_id,
                                  description="llm-stack interface endpoints",
                                  tags={"Name": f"{name}-endpoints"}, opts=child)
    aws.vpc.SecurityGroupIngressRule(f"{name}-endpoints-https", security_group_id=group.id,
                                     cidr_ipv4=vpc_cidr, ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS,
                                     description="HTTPS from the VPC", opts=child)
    return [aws.ec2.VpcEndpoint(
        f"{name}-{service.replace('.', '-')}", vpc_id=vpc_id, service_name=service_name(region, service),
        vpc_endpoint_type="Interface", subnet_ids=list(subnet_ids), security_group_ids=[group.id],
        private_dns_enabled=True, tags={"Name": f"{name}-{service}"}, opts=child)
        for service in INTERFACE_SERVICES]
