"""The preflight's pure checks: the vCPU quota arithmetic per quota code, the zone choice from
EC2's offerings, and the start-size warning for GPU pools created with nodes."""

from __future__ import annotations

import pytest

from infra.aws.preflight.quotas import QUOTA_CODES, quota_class, quota_findings, quota_needs
from infra.aws.preflight.run import start_size_findings
from infra.aws.preflight.zones import choose_zones, zone_notes
from infra.config.pools import NodePoolConfig

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def pool(instance: str, lo: int = 0, want: int = 0, hi: int = 2, **kw) -> NodePoolConfig:
    return NodePoolConfig(instance_type=instance, min_size=lo, desired_size=want, max_size=hi, **kw)


@pytest.mark.parametrize(("instance", "klass"), [("p4de.24xlarge", "P"), ("p5.48xlarge", "P"),
                                                 ("g5.2xlarge", "G"), ("m6i.xlarge", "Standard"),
                                                 ("r6i.8xlarge", "Standard")])
def test_quota_class_from_the_family_letters(instance, klass):
    """P, G and Standard families map to their own quota."""
    assert quota_class(instance) == klass


def test_needs_sum_vcpus_per_code_and_skip_capacity_blocks():
    """Two on-demand P pools share L-417A185B; spot G gets its own code; a Capacity Block pool none."""
    needs = quota_needs({
        "a": pool("p4de.24xlarge", 0, 1, 3), "b": pool("p4d.24xlarge", 0, 0, 2),
        "dev": pool("g5.2xlarge", 0, 1, 1, capacity_type="SPOT"),
        "block": pool("p5.48xlarge", 0, 0, 1, capacity_type="CAPACITY_BLOCK",
                      capacity_reservation_id="cr-0123456789abcdef0", availability_zones=("us-east-1a",))})
    by_code = {n.code: n for n in needs}
    assert set(by_code) == {"L-417A185B", "L-3819A6DF"}
    p = by_code["L-417A185B"]
    assert (p.pools, p.node_vcpus, p.desired_vcpus, p.max_vcpus) == (("a", "b"), 96, 96, 480)
    assert by_code["L-3819A6DF"].max_vcpus == 8


def test_a_new_accounts_zero_p_quota_is_an_error_naming_the_code_and_the_fix():
    """Quota 0 < one p4de node (96 vCPUs): an error with the quota code and the increase command."""
    needs = quota_needs({"a100": pool("p4de.24xlarge", 0, 0, 6)})
    (finding,) = quota_findings(needs, {"L-417A185B": 0.0}, "us-east-1")
    assert finding.level == "error" and "L-417A185B" in finding.message and "96" in finding.message
    assert "--desired-value 576" in finding.message


@pytest.mark.parametrize(("quota", "level"), [(95.0, "error"), (96.0, "warning"), (575.0, "warning"),
                                              (576.0, None), (None, "warning")])
def test_quota_thresholds(quota, level):
    """Below one node: error; below maxSize: warning (the autoscaler stops); unreadable: warning."""
    needs = quota_needs({"a100": pool("p4de.24xlarge", 0, 1, 6)})
    found = quota_findings(needs, {"L-417A185B": quota}, "us-east-1")
    assert [f.level for f in found] == ([level] if level else [])


def test_every_code_table_entry_is_a_service_quota_code():
    """Each (class, purchase option) has an `L-` code; six in all."""
    assert len(QUOTA_CODES) == 6 and all(code.startswith("L-") for code, _ in QUOTA_CODES.values())


def test_gpu_pool_goes_to_the_first_cluster_zone_offering_its_type():
    """p4de offered in b and c only: the GPU pool gets b (one zone), the CPU pool every zone offering m6i."""
    pools = {"a100": pool("p4de.24xlarge"), "system": pool("m6i.xlarge", 1, 2, 3)}
    offered = {"p4de.24xlarge": frozenset({"us-east-1b", "us-east-1c"}), "m6i.xlarge": frozenset(ZONES)}
    zones, findings = choose_zones(pools, ZONES, offered)
    assert zones == {"a100": ("us-east-1b",), "system": ZONES} and findings == []
    (note,) = zone_notes(zones, pools, ZONES)
    assert "us-east-1b" in note and "availabilityZones" in note


def test_no_cluster_zone_offering_the_type_is_an_error_naming_where_it_is():
    """Offered only outside the VPC's zones: an error listing the zones that offer it."""
    pools = {"a100": pool("p4de.24xlarge")}
    _, (finding,) = choose_zones(pools, ZONES[:2], {"p4de.24xlarge": frozenset({"us-east-1c"})})
    assert finding.level == "error" and finding.key == "nodePools.a100.instanceType"
    assert "us-east-1c" in finding.message


def test_a_pinned_zone_that_does_not_offer_the_type_is_an_error():
    """A pool's own zone must offer its instance type."""
    pools = {"a100": pool("p4de.24xlarge", availability_zones=("us-east-1a",))}
    zones, (finding,) = choose_zones(pools, ZONES, {"p4de.24xlarge": frozenset({"us-east-1b"})})
    assert zones["a100"] == ("us-east-1a",) and finding.key == "nodePools.a100.availabilityZones"


def test_offline_keeps_the_first_zone_for_gpu_pools():
    """No offerings known (offline): GPU pools in the first zone, CPU pools in all, no findings."""
    zones, findings = choose_zones({"a100": pool("p4de.24xlarge"), "s": pool("m6i.xlarge")}, ZONES, None)
    assert zones == {"a100": ZONES[:1], "s": ZONES} and findings == []


def test_gpu_pools_created_with_nodes_and_no_reservation_are_warned():
    """desiredSize >= 1 on demand warns; 0, a CPU pool, or a reservation does not."""
    found = start_size_findings({
        "warm": pool("p4de.24xlarge", 1, 1, 2), "cold": pool("p4de.24xlarge", 0, 0, 2),
        "cpu": pool("m6i.xlarge", 1, 1, 2),
        "odcr": pool("p4de.24xlarge", 1, 1, 1, capacity_reservation_id="cr-0123456789abcdef0",
                     availability_zones=("us-east-1a",))})
    assert [f.key for f in found] == ["nodePools.warm.desiredSize"]
