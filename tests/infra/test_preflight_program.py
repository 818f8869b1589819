"""The preflight as `pulumi up` runs it: the AWS lookups as real SDK invokes (answered by the
mock runtime's invoke table), a blocking finding stopping the program before any resource, the
GPU pool placed in the zone that offers its type, and nothing asked offline."""

from __future__ import annotations

from pathlib import Path

import pytest

import infra.program
from infra.aws.preflight import PreflightError
from infra.aws.preflight.lookups import AwsLookups, LookupFailed
from infra.stackfile import read_stack_file

ROOT = Path(__file__).resolve().parents[2]
QUOTA = "aws:servicequotas/getServiceQuota:getServiceQuota"
OFFERINGS = "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings"
IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
ADMIN_SESSION = "arn:aws:sts::000000000000:assumed-role/offline-render-admin/deploy"
"""A session of the admin role the offline stand-ins list for every shipped stack."""
PROD_ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def answer_account(mocks, quotas: dict[str, float], offered: dict[str, tuple[str, ...]],
                   caller: str = ADMIN_SESSION) -> None:
    """An account with these quota values and these offerings (instance type -> zones), deployed
    to as `caller`."""
    def offerings(args):
        wanted = args["filters"][0]["values"]
        pairs = [(t, z) for t in wanted for z in offered.get(t, ())]
        return {"instanceTypes": [t for t, _ in pairs], "locations": [z for _, z in pairs],
                "locationTypes": ["availability-zone"] * len(pairs), "id": args["region"]}

    def quota(args):
        if args["quotaCode"] not in quotas:
            return {}, [("quotaCode", "AccessDeniedException: not authorized to GetServiceQuota")]
        return {"value": quotas[args["quotaCode"]], "quotaCode": args["quotaCode"], "id": args["quotaCode"]}

    mocks.answer(OFFERINGS, offerings)
    mocks.answer(QUOTA, quota)
    mocks.answer(IDENTITY, lambda _: {"arn": caller, "accountId": caller.split(":")[4], "id": "caller",
                                      "userId": "AROAEXAMPLE:deploy"})


@pytest.fixture
def online(monkeypatch):
    """The program believes it runs under the CLI (the preflight asks AWS, here the invoke table)."""
    monkeypatch.setattr(infra.program, "offline_runtime", lambda: False)


def test_lookups_are_real_invokes_in_the_stacks_region(pulumi_mocks):
    """AwsLookups goes through the SDK's invoke path: region and filters as sent, offerings
    grouped by type, a provider-reported failure raised as LookupFailed."""
    answer_account(pulumi_mocks, {"L-417A185B": 384.0}, {"p4de.24xlarge": ("us-east-1b", "us-east-1c")})
    lookups = AwsLookups("us-east-1")
    assert lookups.offerings(["p4de.24xlarge", "m6i.xlarge"]) == {
        "p4de.24xlarge": frozenset({"us-east-1b", "us-east-1c"}), "m6i.xlarge": frozenset()}
    assert lookups.quota("L-417A185B") == 384.0
    with pytest.raises(LookupFailed, match="AccessDenied"):
        lookups.quota("L-1216C47A")
    tokens = [(token, args.get("region")) for token, args in pulumi_mocks.calls]
    assert tokens == [(OFFERINGS, "us-east-1"), (QUOTA, "us-east-1"), (QUOTA, "us-east-1")]
    assert lookups.caller_arn() == ADMIN_SESSION


def test_a_deployer_outside_the_admins_stops_before_any_resource(run_program, pulumi_mocks, online):
    """Quotas and offerings fine, but the caller's role has no access entry: PreflightError
    naming the key and the role, and nothing is created (not ~15 minutes of control plane)."""
    caller = "arn:aws:sts::000000000000:assumed-role/developer/laptop"
    answer_account(pulumi_mocks, {"L-417A185B": 576.0, "L-1216C47A": 1000.0},
                   {"p4de.24xlarge": PROD_ZONES, "r6i.8xlarge": PROD_ZONES}, caller=caller)
    with pytest.raises(PreflightError, match=r"eks.adminPrincipalArns: the identity running .*developer"):
        run_program(read_stack_file(ROOT, "prod"))
    assert pulumi_mocks.resources == [] and (IDENTITY, {}) in pulumi_mocks.calls


def test_zero_p_quota_stops_prod_before_any_resource(run_program, pulumi_mocks, online):
    """A new account (P quota 0): PreflightError naming the pool and the quota code, no resource."""
    answer_account(pulumi_mocks, {"L-417A185B": 0.0, "L-1216C47A": 1000.0},
                   {"p4de.24xlarge": PROD_ZONES, "r6i.8xlarge": PROD_ZONES})
    with pytest.raises(PreflightError, match=r"nodePools \(a100\): quota .*L-417A185B.* is 0 vCPUs"):
        run_program(read_stack_file(ROOT, "prod"))
    assert pulumi_mocks.resources == [] and len(pulumi_mocks.calls) >= 2


def test_gpu_pool_lands_in_the_zone_that_offers_its_type(run_program, pulumi_mocks, online):
    """p4de offered only in us-east-1c: the a100 node group gets that zone's subnet, the system
    pool a group in each of the three; an unreadable quota only warns."""
    answer_account(pulumi_mocks, {"L-417A185B": 576.0},
                   {"p4de.24xlarge": ("us-east-1c",), "r6i.8xlarge": PROD_ZONES})
    mocks = run_program(read_stack_file(ROOT, "prod"))
    subnets = {s.urn: s.inputs["availabilityZone"] for s in mocks.of_type("aws:ec2/subnet:Subnet")}
    groups = {g.inputs["nodeGroupName"]: g for g in mocks.of_type("aws:eks/nodeGroup:NodeGroup")}
    zones = {name: sorted(zone for urn, zone in subnets.items() if urn in g.depends_on and "private" in urn)
             for name, g in groups.items()}
    assert zones == {"a100": ["us-east-1c"]} | {f"system-{z}": [z] for z in PROD_ZONES}


def test_offline_asks_nothing(run_program, pulumi_mocks):
    """Under the mock runtime (render, tests) no AWS lookup is made; the GPU pool keeps zone a."""
    mocks = run_program(read_stack_file(ROOT, "prod"))
    assert not [t for t, _ in mocks.calls if t in (QUOTA, OFFERINGS)]
    (a100,) = [g for g in mocks.of_type("aws:eks/nodeGroup:NodeGroup") if g.inputs["nodeGroupName"] == "a100"]
    assert len(a100.inputs["subnetIds"]) == 1
