"""The AWS cluster as a real account needs it (issue 8), checked on the recorded program: resource
ordering, access entries, the CNI's network policy, add-ons waiting for the system pool only,
GPU pools in one zone, node autoscaling, the Load Balancer Controller and the router's exposure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.aws.load_balancer import service_annotations
from infra.config.exposure import ExposureConfig
from infra.mocks import RecordedResource, RecordingMocks
from infra.stackfile import read_stack_file

ROOT = Path(__file__).resolve().parents[2]
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0f8a6d2e-8c9b-4f5e-9a1b-2c3d4e5f6a7b"


def _one(mocks: RecordingMocks, typ: str, name: str) -> RecordedResource:
    (found,) = [r for r in mocks.of_type(typ) if r.name == name]
    return found


def _urns(mocks: RecordingMocks, typ: str) -> set[str]:
    return {r.urn for r in mocks.of_type(typ)}


@pytest.fixture
def prod(run_program) -> RecordingMocks:
    return run_program(read_stack_file(ROOT, "prod"))


def test_nat_and_eips_wait_for_the_internet_gateway(prod):
    """Every EIP and NAT gateway depends on the internet gateway (so destroy removes them first)."""
    (igw,) = _urns(prod, "aws:ec2/internetGateway:InternetGateway")
    checked = 0
    for typ in ("aws:ec2/eip:Eip", "aws:ec2/natGateway:NatGateway"):
        for resource in prod.of_type(typ):
            assert igw in resource.depends_on, resource.name
            checked += 1
    assert checked == 6  # prod: a NAT gateway (and EIP) per zone


def test_cluster_and_nodes_wait_for_their_role_policies_and_routes(prod):
    """The cluster waits for its role's policy attachments and log group; node groups for the node
    role's attachments, the NAT routes and the admins' access entries."""
    attachments = {r.urn: r.parent for r in prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    (cluster,) = prod.of_type("aws:eks/cluster:Cluster")
    cluster_role = _one(prod, "aws:iam/role:Role", "eks-cluster").urn
    assert {u for u, p in attachments.items() if p == cluster_role} <= set(cluster.depends_on)
    assert _one(prod, "aws:cloudwatch/logGroup:LogGroup", "eks-logs").urn in cluster.depends_on
    node_role = _one(prod, "aws:iam/role:Role", "pools-node").urn
    node_attachments = {u for u, p in attachments.items() if p == node_role}
    nat_routes = {r.urn for r in prod.of_type("aws:ec2/route:Route") if r.inputs.get("natGatewayId")}
    entries = _urns(prod, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    groups = prod.of_type("aws:eks/nodeGroup:NodeGroup")
    for group in groups:
        assert node_attachments | nat_routes | entries <= set(group.depends_on), group.name
    assert len(node_attachments) == 4 and len(nat_routes) == 3 and len(groups) == 4  # system: one per zone


def test_admins_are_explicit_access_entries_only(prod):
    """No implicit creator admin (it collides with an explicit entry, 409); one entry per admin, and
    the Kubernetes provider waits for them."""
    (cluster,) = prod.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["accessConfig"] == {"authenticationMode": "API",
                                              "bootstrapClusterCreatorAdminPermissions": False}
    entries = prod.of_type("aws:eks/accessEntry:AccessEntry")
    standin = "arn:aws:iam::000000000000:role/offline-render-admin"
    assert [e.inputs["principalArn"] for e in entries] == [standin]
    (provider,) = prod.of_type("pulumi:providers:kubernetes")
    assert _urns(prod, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation") <= set(provider.depends_on)


def test_vpc_cni_enforces_network_policies(prod):
    """The vpc-cni add-on runs its network policy agent, so the engines' NetworkPolicies hold."""
    cni = _one(prod, "aws:eks/addon:Addon", "addons-vpc-cni")
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_system_addons_and_serving_wait_for_the_system_pool_only(prod):
    """CoreDNS, EBS CSI, the controllers and every serving object wait for the system pool, never
    for a GPU pool (one GPU capacity failure blocks nothing else)."""
    gpu = _one(prod, "aws:eks/nodeGroup:NodeGroup", "pools-a100").urn
    systems = [_one(prod, "aws:eks/nodeGroup:NodeGroup", f"pools-system-us-east-1{z}").urn for z in "abc"]
    waiting = [r for r in prod.resources if all(s in r.depends_on for s in systems)]
    names = {r.name for r in waiting}
    assert {"addons-coredns", "addons-aws-ebs-csi-driver", "cluster-autoscaler",
            "aws-load-balancer-controller", "llm-router-deployment"} <= names
    assert not [r.name for r in prod.resources if gpu in r.depends_on]
    assert len(waiting) > 20


def test_gpu_pool_runs_in_one_zone_with_imds_hop_limit_one(prod):
    """The GPU pool's node group gets one private subnet (the first zone); the system pool one
    group per zone, each with that zone's subnet, sharing one launch template; launch templates
    allow one IMDS hop (pods cannot take the node role)."""
    groups = prod.of_type("aws:eks/nodeGroup:NodeGroup")
    subnets = {g.inputs["nodeGroupName"]: g.inputs["subnetIds"] for g in groups}
    assert set(subnets) == {"a100", "system-us-east-1a", "system-us-east-1b", "system-us-east-1c"}
    assert all(len(ids) == 1 for ids in subnets.values())
    assert len({ids[0] for name, ids in subnets.items() if name.startswith("system-")}) == 3
    templates = prod.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert [t.inputs["metadataOptions"]["httpPutResponseHopLimit"] for t in templates] == [1, 1]


def test_cluster_autoscaler_discovers_this_cluster(prod):
    """The autoscaler release discovers this cluster's node groups, runs with IRSA on the system
    pool, and its image matches the control plane's minor version."""
    releases = prod.of_type("kubernetes:helm.sh/v3:Release")
    (scaler,) = [r for r in releases if r.inputs["chart"] == "cluster-autoscaler"]
    values = scaler.inputs["values"]
    assert values["autoDiscovery"] == {"clusterName": "llm-stack-prod"} and values["awsRegion"] == "us-east-1"
    assert values["image"]["tag"].startswith("v1.35.")
    assert "eks.amazonaws.com/role-arn" in values["rbac"]["serviceAccount"]["annotations"]
    groups = {g.inputs["nodeGroupName"]: g.inputs["scalingConfig"]
              for g in prod.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert groups["a100"] == {"minSize": 0, "desiredSize": 0, "maxSize": 6}  # grown by the autoscaler


def test_cluster_autoscaler_resizes_only_this_clusters_groups(prod):
    """The autoscaler's IRSA policy reads everything but resizes/terminates only Auto Scaling
    groups tagged `k8s.io/cluster-autoscaler/<this cluster>: owned` (its README's advice)."""
    (policy,) = [p for p in prod.of_type("aws:iam/policy:Policy")
                 if "SetDesiredCapacity" in p.inputs["policy"]]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    (write,) = [s for s in statements if "autoscaling:SetDesiredCapacity" in s["Action"]]
    assert sorted(write["Action"]) == ["autoscaling:SetDesiredCapacity",
                                       "autoscaling:TerminateInstanceInAutoScalingGroup"]
    assert write["Condition"] == {"StringEquals": {
        "aws:ResourceTag/k8s.io/cluster-autoscaler/llm-stack-prod": "owned"}}
    writes = [s for s in statements if any(":Set" in a or ":Terminate" in a for a in s["Action"])]
    assert writes == [write]


def test_log_group_has_retention(prod):
    """The control-plane log group exists before the cluster, with the configured retention."""
    logs = _one(prod, "aws:cloudwatch/logGroup:LogGroup", "eks-logs")
    assert logs.inputs == {"name": "/aws/eks/llm-stack-prod/cluster", "retentionInDays": 90}


def test_prod_router_is_an_internal_nlb_of_the_controller(prod):
    """Prod's router Service is a LoadBalancer the AWS Load Balancer Controller reconciles (type
    external), internal, with IP targets."""
    (service,) = [r for r in prod.of_type("kubernetes:core/v1:Service") if r.name == "llm-router-service"]
    annotations = service.inputs["metadata"]["annotations"]
    assert service.inputs["spec"]["type"] == "LoadBalancer"
    lb = {k: v for k, v in annotations.items() if k.startswith("service.beta.kubernetes.io/")}
    assert lb == {"service.beta.kubernetes.io/aws-load-balancer-type": "external",
                  "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                  "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
                  "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes":
                      "deregistration_delay.timeout_seconds=2660"}  # 30 s + the 70B drain


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_service_create_waits_on_the_load_balancer_controllers_webhook(run_program, stack):
    """The controller's Service mutator (failurePolicy Fail on every Service CREATE) is off, so the
    releases installed beside it (metrics-server, the autoscaler) create their Services while its
    pods start; every LoadBalancer Service still opts in to the controller by its annotation."""
    mocks = run_program(read_stack_file(ROOT, stack))
    releases = {r.inputs["chart"]: r for r in mocks.of_type("kubernetes:helm.sh/v3:Release")}
    lbc = releases["aws-load-balancer-controller"]
    assert lbc.inputs["values"]["enableServiceMutatorWebhook"] is False
    beside = [r for chart, r in releases.items() if chart in ("metrics-server", "cluster-autoscaler")]
    assert len(beside) == 2 and all(lbc.urn not in r.depends_on for r in beside)
    balanced = [r for r in mocks.of_type("kubernetes:core/v1:Service")
                if r.inputs["spec"].get("type") == "LoadBalancer"]
    for service in balanced:
        annotations = service.inputs["metadata"].get("annotations") or {}
        assert annotations.get("service.beta.kubernetes.io/aws-load-balancer-type") == "external" or \
            service.inputs["spec"].get("loadBalancerClass") == "service.k8s.aws/nlb"
    assert len(balanced) == (1 if stack == "prod" else 0)


def test_public_exposure_terminates_tls_and_limits_sources():
    """A public NLB is internet-facing with TLS from the ACM certificate on the router's port and
    only the listed source ranges; in-cluster exposure has no annotations."""
    public = service_annotations(ExposureConfig(kind="public", tls_certificate_arn=CERT,
                                                source_ranges=("198.18.0.0/15", "10.0.0.0/8")), "http")
    prefix = "service.beta.kubernetes.io/"
    assert public[prefix + "aws-load-balancer-scheme"] == "internet-facing"
    assert public[prefix + "aws-load-balancer-ssl-cert"] == CERT
    assert public[prefix + "aws-load-balancer-ssl-ports"] == "http"
    assert public[prefix + "load-balancer-source-ranges"] == "198.18.0.0/15,10.0.0.0/8"
    assert service_annotations(ExposureConfig(), "http") == {}


def test_engines_and_routers_spread_at_serving_priority(prod):
    """Engines spread over nodes and routers over zones (hard) and nodes, at the serving
    PriorityClasses that mode eks creates (one per engine size; TP-4 engines at their own)."""
    classes = {r.inputs["metadata"]["name"]
               for r in prod.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
    assert classes == {"llm-serving", "llm-serving-tp4"}
    deployments = {r.inputs["metadata"]["name"]: r.inputs["spec"]["template"]["spec"]
                   for r in prod.of_type("kubernetes:apps/v1:Deployment")}
    checked = 0
    for name, wanted in (("llm-llama8b", "llm-serving"), ("llm-llama70b", "llm-serving-tp4"),
                         ("llm-router", "llm-serving")):
        pod = deployments[name]
        assert pod["priorityClassName"] == wanted
        keys = {c["topologyKey"]: c["whenUnsatisfiable"] for c in pod["topologySpreadConstraints"]}
        assert keys["kubernetes.io/hostname"] == "ScheduleAnyway"
        checked += 1
    router = {c["topologyKey"]: c for c in deployments["llm-router"]["topologySpreadConstraints"]}
    assert router["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"
    zone = router["topology.kubernetes.io/zone"]
    assert zone["labelSelector"]["matchLabels"]["llmstack.io/role"] == "router"
    assert checked == 3


def test_existing_cluster_pods_name_no_priority_class(run_program):
    """Mode existing creates no PriorityClass, so no pod names one (it would be refused)."""
    import yaml

    from infra.stackfile import parse_stack_yaml

    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["llm-stack:cluster"] = {"mode": "existing", "name": "on-prem",
                                               "kubernetesVersion": "1.34"}
    document["config"]["llm-stack:kubeconfig"] = {"secure": "v1:a2NmZw==:ZXhpc3Rpbmc="}
    document["config"]["llm-stack:router"]["image"] = "registry.example.com/llm-stack/router:0.2.0"
    document["config"]["llm-stack:benchmark"]["image"] = "registry.example.com/llm-stack/benchmark:0.2.0"
    mocks = run_program(parse_stack_yaml(document))
    pods = [r.inputs["spec"]["template"]["spec"] for r in mocks.of_type("kubernetes:apps/v1:Deployment")]
    assert len(pods) >= 2 and not any("priorityClassName" in pod for pod in pods)
    spreads = [c["whenUnsatisfiable"] for pod in pods for c in pod.get("topologySpreadConstraints", [])]
    assert spreads and set(spreads) == {"ScheduleAnyway"}  # nodes there may lack the zone label
    assert not mocks.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")


def test_docker_hub_pull_through_cache_is_opt_in(run_program):
    """With a Docker Hub credential secret, an ECR pull-through cache rule for registry-1.docker.io
    exists and the node role may fill it; without one, none."""
    import yaml

    from infra.stackfile import parse_stack_yaml

    secret = "arn:aws:secretsmanager:us-west-2:111122223333:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["llm-stack:cluster"]["eks"]["dockerHubCredentialArn"] = secret
    mocks = run_program(parse_stack_yaml(document))
    (rule,) = mocks.of_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    assert rule.inputs == {"credentialArn": secret, "ecrRepositoryPrefix": "docker-hub",
                           "upstreamRegistryUrl": "registry-1.docker.io"}
    (fill,) = mocks.of_type("aws:iam/rolePolicy:RolePolicy")
    statement = json.loads(fill.inputs["policy"])["Statement"][0]
    assert statement["Action"] == ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"]
    assert statement["Resource"] == "arn:aws:ecr:us-west-2:*:repository/docker-hub/*"


def test_docker_hub_cache_secret_must_follow_ecr_naming(raw):
    """The credential must be a Secrets Manager secret named ecr-pullthroughcache/..."""
    from infra.config import parse_stack_config
    from infra.errors import ConfigError

    config = raw("dev")
    config["cluster"]["eks"]["dockerHubCredentialArn"] = (
        "arn:aws:secretsmanager:us-west-2:111122223333:secret:dockerhub")
    with pytest.raises(ConfigError, match=r"llm-stack:cluster\.eks\.dockerHubCredentialArn must be"):
        parse_stack_config(config)


def test_capacity_block_pool_launches_into_its_reservation(run_program):
    """A Capacity Block pool: the launch template targets the reservation with the capacity-block
    market and carries the instance type; the node group is CAPACITY_BLOCK in the block's zone."""
    import yaml

    from infra.stackfile import parse_stack_yaml

    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["llm-stack:nodePools"]["a100"] |= {
        "capacityType": "CAPACITY_BLOCK", "capacityReservationId": "cr-0123456789abcdef0",
        "availabilityZones": ["us-east-1b"]}
    mocks = run_program(parse_stack_yaml(document))
    template = _one(mocks, "aws:ec2/launchTemplate:LaunchTemplate", "pools-a100").inputs
    assert template["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert template["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": "cr-0123456789abcdef0"}}
    assert template["instanceType"] == "p4de.24xlarge"
    group = _one(mocks, "aws:eks/nodeGroup:NodeGroup", "pools-a100").inputs
    assert group["capacityType"] == "CAPACITY_BLOCK" and "instanceTypes" not in group
    assert group["subnetIds"] == ["vpc-private-us-east-1b-id"]
