"""Capacity Block pools (issue 23 item 13): the group sits at 0 outside the block and during
upgrades (min and desired 0, refused otherwise naming the field), and a configured block start
becomes a one-time scheduled action that grows the group to maxSize then."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from infra.aws.node_pools import CAPACITY_BLOCK_START_ACTION, capacity_block_schedule
from infra.config.pools import NodePoolConfig
from infra.errors import ConfigError
from infra.stackfile import parse_stack_yaml

ROOT = Path(__file__).resolve().parents[2]
BLOCK = {"instance_type": "p5.48xlarge", "min_size": 0, "desired_size": 0, "max_size": 2,
         "capacity_type": "CAPACITY_BLOCK", "capacity_reservation_id": "cr-0123456789abcdef0",
         "availability_zones": ("us-east-1b",)}
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("field", "key"), [("min_size", "minSize"), ("desired_size", "desiredSize")])
def test_a_block_pool_holding_nodes_is_refused(field, key):
    """min or desired above 0 would keep nodes past the block's end and through upgrades."""
    sizes = {"min_size": 0, "desired_size": 0} | {field: 1}
    if field == "min_size":
        sizes["desired_size"] = 1
    with pytest.raises(ConfigError, match=f"^{key} must be 0 with capacityType CAPACITY_BLOCK"):
        NodePoolConfig(**(BLOCK | sizes))


@pytest.mark.parametrize("start", ["2026-12-14T11:30:00", "2026-12-14T11:30:00+01:00", "next monday"])
def test_a_block_start_must_be_utc_iso(start):
    """The start names capacityBlockStart, the value and the form allowed."""
    with pytest.raises(ConfigError, match="capacityBlockStart must be an ISO 8601 time in UTC") as caught:
        NodePoolConfig(**BLOCK, capacity_block_start=start)
    assert start in str(caught.value)


def test_a_start_belongs_to_block_pools_only():
    """capacityBlockStart on an on-demand pool is refused."""
    with pytest.raises(ConfigError, match="capacityBlockStart is only allowed with capacityType"):
        NodePoolConfig(instance_type="p4de.24xlarge", min_size=0, desired_size=0, max_size=1,
                       capacity_block_start="2026-12-14T11:30:00Z")


def test_schedule_grows_to_max_at_a_future_start_only():
    """A future start schedules min 0 / desired max / max at that UTC time; a past one, or none, nothing."""
    pool = NodePoolConfig(**BLOCK, capacity_block_start="2026-12-14T11:30:00Z")
    assert capacity_block_schedule(pool, NOW) == {
        "scheduled_action_name": CAPACITY_BLOCK_START_ACTION, "start_time": "2026-12-14T11:30:00Z",
        "min_size": 0, "desired_capacity": 2, "max_size": 2}
    assert capacity_block_schedule(pool, datetime(2026, 12, 14, 11, 30, tzinfo=UTC)) is None
    assert capacity_block_schedule(NodePoolConfig(**BLOCK), NOW) is None


def test_the_program_schedules_the_block_start_on_the_node_groups_asg(run_program):
    """Prod with its A100 pool on a Capacity Block: one group at 0/0/max in the block's zone, its
    launch template in capacity-block mode, and one Schedule on that group's Auto Scaling group."""
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["llm-stack:nodePools"]["a100"] |= {
        "capacityType": "CAPACITY_BLOCK", "capacityReservationId": "cr-0123456789abcdef0",
        "availabilityZones": ["us-east-1b"], "capacityBlockStart": "2099-01-05T11:30:00Z"}
    mocks = run_program(parse_stack_yaml(document))
    (group,) = [g for g in mocks.of_type("aws:eks/nodeGroup:NodeGroup") if g.name == "pools-a100"]
    assert group.inputs["capacityType"] == "CAPACITY_BLOCK" and "instanceTypes" not in group.inputs
    assert group.inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 6}
    (schedule,) = mocks.of_type("aws:autoscaling/schedule:Schedule")
    assert schedule.inputs == {"autoscalingGroupName": "eks-pools-a100-asg", "desiredCapacity": 6,
                               "maxSize": 6, "minSize": 0, "scheduledActionName": CAPACITY_BLOCK_START_ACTION,
                               "startTime": "2099-01-05T11:30:00Z"}
    assert schedule.parent == group.urn
