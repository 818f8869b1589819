"""The VPC: public subnets with an internet gateway, private subnets behind NAT, per zone, and its
VPC endpoints (infra/aws/endpoints.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.endpoints import interface_endpoints, s3_gateway
from infra.aws.subnets import SubnetPlan, plan_subnets
from infra.aws.tags import subnet_tags
from infra.config.cluster import EksConfig


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    """What the VPC is built from."""

    cluster_name: str
    """EKS cluster the subnets are tagged for."""
    eks: EksConfig
    """CIDR, zones and NAT layout."""


class Network(pulumi.ComponentResource):
    """VPC, internet gateway, NAT gateway(s), one public + one private subnet per zone, the S3
    gateway endpoint and (opted in) the ECR/STS interface endpoints."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnets_by_zone: dict[str, pulumi.Output[str]]
    """Private subnet id per availability zone (node pools pinned to zones pick theirs)."""
    private_route_table_ids: list[pulumi.Output[str]]
    """The private subnets' route tables, one per zone (gateway endpoints attach to them)."""
    ready: list[pulumi.Resource]
    """Routes and route-table associations: nodes need them to join (through NAT), and on destroy
    they must outlive the nodes and the cluster's network interfaces."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-stack:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._name, self._args = name, args
        vpc = aws.ec2.Vpc(name, cidr_block=args.eks.vpc_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags={"Name": name}, opts=child)
        self.vpc_id = vpc.id
        igw = aws.ec2.InternetGateway(name, vpc_id=vpc.id, tags={"Name": name}, opts=child)
        plans = plan_subnets(args.eks.vpc_cidr, args.eks.availability_zones)
        public = [self._subnet(vpc, plan, public=True) for plan in plans]
        self.ready = self._public_routes(vpc, igw, public)
        nats = self._nat_gateways(public, igw)
        private = [self._subnet(vpc, plan, public=False) for plan in plans]
        self.private_route_table_ids = []
        for i, (plan, subnet) in enumerate(zip(plans, private, strict=True)):
            table, routes = self._private_route(vpc, plan.zone, subnet, nats[min(i, len(nats) - 1)])
            self.private_route_table_ids.append(table.id)
            self.ready += routes
        self.public_subnet_ids = [s.id for s in public]
        self.private_subnet_ids = [s.id for s in private]
        self.private_subnets_by_zone = {plan.zone: s.id for plan, s in zip(plans, private, strict=True)}
        eks = args.eks
        s3_gateway(name, region=eks.region, vpc_id=vpc.id, route_table_ids=self.private_route_table_ids,
                   parent=self)
        if eks.interface_endpoints:
            interface_endpoints(name, region=eks.region, vpc_id=vpc.id, vpc_cidr=eks.vpc_cidr,
                                subnet_ids=self.private_subnet_ids, parent=self)
        self.register_outputs({"vpcId": vpc.id, "privateSubnetIds": self.private_subnet_ids})

    def _subnet(self, vpc: aws.ec2.Vpc, plan: SubnetPlan, *, public: bool) -> aws.ec2.Subnet:
        kind = "public" if public else "private"
        name = f"{self._name}-{kind}-{plan.zone}"
        return aws.ec2.Subnet(
            name, vpc_id=vpc.id, availability_zone=plan.zone,
            cidr_block=plan.public_cidr if public else plan.private_cidr, map_public_ip_on_launch=False,
            tags=subnet_tags(self._args.cluster_name, public=public, name=name),
            opts=pulumi.ResourceOptions(parent=self))

    def _public_routes(self, vpc: aws.ec2.Vpc, igw: aws.ec2.InternetGateway,
                       subnets: list[aws.ec2.Subnet]) -> list[pulumi.Resource]:
        child = pulumi.ResourceOptions(parent=self)
        name = f"{self._name}-public"
        table = aws.ec2.RouteTable(name, vpc_id=vpc.id, tags={"Name": name}, opts=child)
        made: list[pulumi.Resource] = [
            aws.ec2.Route(f"{name}-internet", route_table_id=table.id, destination_cidr_block="0.0.0.0/0",
                          gateway_id=igw.id, opts=child)]
        for zone, subnet in zip(self._args.eks.availability_zones, subnets, strict=True):
            made.append(aws.ec2.RouteTableAssociation(f"{self._name}-public-{zone}", route_table_id=table.id,
                                                      subnet_id=subnet.id, opts=child))
        return made

    def _nat_gateways(self, public: list[aws.ec2.Subnet],
                      igw: aws.ec2.InternetGateway) -> list[aws.ec2.NatGateway]:
        """NAT gateways and their EIPs depend on the internet gateway, as the SDK's `aws.ec2.Eip`
        docs ask ("EIP may require IGW to exist prior to association"): created after it, deleted
        before it."""
        zones = self._args.eks.availability_zones
        count = len(zones) if self._args.eks.nat_gateways == "perAz" else 1
        after_igw = pulumi.ResourceOptions(parent=self, depends_on=[igw])
        nats = []
        for zone, subnet in list(zip(zones, public, strict=True))[:count]:
            eip_name = f"{self._name}-nat-{zone}"
            eip = aws.ec2.Eip(eip_name, domain="vpc", tags={"Name": eip_name}, opts=after_igw)
            nats.append(aws.ec2.NatGateway(f"{self._name}-{zone}", allocation_id=eip.id, subnet_id=subnet.id,
                                           tags={"Name": f"{self._name}-{zone}"}, opts=after_igw))
        return nats

    def _private_route(self, vpc: aws.ec2.Vpc, zone: str, subnet: aws.ec2.Subnet,
                       nat: aws.ec2.NatGateway) -> tuple[aws.ec2.RouteTable, list[pulumi.Resource]]:
        child = pulumi.ResourceOptions(parent=self)
        name = f"{self._name}-private-{zone}"
        table = aws.ec2.RouteTable(name, vpc_id=vpc.id, tags={"Name": name}, opts=child)
        nat_route = aws.ec2.Route(f"{name}-nat", route_table_id=table.id, destination_cidr_block="0.0.0.0/0",
                                  nat_gateway_id=nat.id, opts=child)
        return table, [nat_route,
                       aws.ec2.RouteTableAssociation(name, route_table_id=table.id, subnet_id=subnet.id,
                                                     opts=child)]
