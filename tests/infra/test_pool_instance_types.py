"""A pool may launch several instance types of the same shape (issue 23 item 14): dev's spot GPU
pool draws on g5.2xlarge and g6.2xlarge in two zones; a type of another shape, a repeat or one
with a capacity reservation is refused naming the field; the node groups, price ceiling and zone
choice see every type."""

from __future__ import annotations

import pytest

from infra.aws.node_pools import node_labels
from infra.aws.preflight.zones import choose_zones
from infra.aws.prices import ON_DEMAND_USD_PER_HOUR, pool_capacity
from infra.config import parse_stack_config
from infra.config.catalog import INSTANCES
from infra.config.pools import NodePoolConfig
from infra.errors import ConfigError
from stack_components.capacity import GPUS

SPOT = {"instance_type": "g5.2xlarge", "min_size": 0, "desired_size": 0, "max_size": 1,
        "capacity_type": "SPOT"}


@pytest.mark.parametrize(("alternatives", "phrase"), [
    (("g5.4xlarge",), "must match instanceType g5.2xlarge in vCPUs, memory, GPUs and GPU memory (8, 32 GiB"),
    (("g6.xlarge",), "must match instanceType g5.2xlarge"),
    (("g5.2xlarge",), "must differ from instanceType"),
    (("g6.2xlarge", "g6.2xlarge"), "must differ from instanceType and from the other alternatives"),
    (("g7.2xlarge",), "must be one of"),
])
def test_alternatives_of_another_shape_are_refused(alternatives, phrase):
    """Each bad alternative fails naming alternativeInstanceTypes[i] and the value."""
    with pytest.raises(ConfigError, match=r"^alternativeInstanceTypes\[\d\]") as caught:
        NodePoolConfig(**SPOT, alternative_instance_types=alternatives)
    assert phrase in str(caught.value) and alternatives[-1] in str(caught.value)


def test_no_alternatives_with_a_reservation():
    """A capacity reservation holds one instance type: alternatives are refused with it."""
    with pytest.raises(ConfigError, match="^alternativeInstanceTypes must be empty with a capacity"):
        NodePoolConfig(**SPOT | {"capacity_type": "ON_DEMAND"}, alternative_instance_types=("g6.2xlarge",),
                       capacity_reservation_id="cr-0123456789abcdef0", availability_zones=("us-west-2a",))


def test_dev_gpu_pool_is_diversified_and_every_type_fits_the_engine(raw):
    """Dev: g5.2xlarge or g6.2xlarge, spot, in both cluster zones; each type's GPU is one the
    engines' KV arithmetic knows, with the primary's memory (what the engine is sized by)."""
    config = parse_stack_config(raw("dev"))
    pool = config.node_pools["gpu"]
    assert pool.instance_types == ("g5.2xlarge", "g6.2xlarge") and pool.capacity_type == "SPOT"
    assert pool.availability_zones == config.cluster.eks.availability_zones == ("us-west-2a", "us-west-2b")
    checked = 0
    for name in pool.instance_types:
        gpu = INSTANCES[name].gpu
        assert gpu in GPUS and GPUS[gpu].memory_gb == INSTANCES[pool.instance_type].gpu_memory_gb == 24
        checked += 1
    assert checked == 2


def test_groups_price_and_zones_see_every_type():
    """The label names both GPU models; the price is the dearer type's; a zone offering only the
    alternative is usable."""
    pool = NodePoolConfig(**SPOT, alternative_instance_types=("g6.2xlarge",))
    assert node_labels("gpu", pool)["k8s.amazonaws.com/accelerator"] == "nvidia-a10g-l4"
    ceiling = max(ON_DEMAND_USD_PER_HOUR["g5.2xlarge"], ON_DEMAND_USD_PER_HOUR["g6.2xlarge"])
    assert pool_capacity(pool, "us-west-2").usd_per_hour_max == round(ceiling, 2)
    offered = {"g5.2xlarge": frozenset({"us-west-2b"}), "g6.2xlarge": frozenset({"us-west-2a"})}
    zones, findings = choose_zones({"gpu": pool}, ("us-west-2a", "us-west-2b"), offered)
    assert zones == {"gpu": ("us-west-2a",)} and findings == []


def test_the_program_gives_each_dev_gpu_group_both_types(run_program):
    """Under the mocks: one spot node group per dev zone, each launching either type."""
    from pathlib import Path

    from infra.stackfile import read_stack_file

    mocks = run_program(read_stack_file(Path(__file__).resolve().parents[2], "dev"))
    groups = [g for g in mocks.of_type("aws:eks/nodeGroup:NodeGroup")
              if g.inputs["labels"]["llmstack.io/node-pool"] == "gpu"]
    assert sorted(g.inputs["nodeGroupName"] for g in groups) == ["gpu-us-west-2a", "gpu-us-west-2b"]
    assert all(g.inputs["instanceTypes"] == ["g5.2xlarge", "g6.2xlarge"] for g in groups)
    assert all(g.inputs["capacityType"] == "SPOT" for g in groups)
