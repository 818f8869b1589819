"""Each pool's capacity and on-demand cost range: a stack output and a line in `llm-stack render`."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.aws.prices import ON_DEMAND_USD_PER_HOUR, pool_capacity
from infra.config.catalog import INSTANCES
from infra.config.pools import NodePoolConfig
from infra.program import capacity_output
from infra.render import stack_notes
from infra.stackfile import STACKS

ROOT = Path(__file__).resolve().parents[2]


def test_every_catalogue_instance_has_a_price():
    """The price table covers the instance catalogue (a pool can never lack a price)."""
    assert set(ON_DEMAND_USD_PER_HOUR) == set(INSTANCES)
    assert all(price > 0 for price in ON_DEMAND_USD_PER_HOUR.values())


def test_capacity_is_gpus_and_price_times_size():
    """GPUs and cost scale with min and max size; a configured price overrides the table."""
    pool = NodePoolConfig(instance_type="p4de.24xlarge", min_size=2, desired_size=2, max_size=6)
    cap = pool_capacity(pool)
    assert (cap.gpus_min, cap.gpus_max) == (16, 48)
    assert cap.usd_per_hour_max == pytest.approx(6 * ON_DEMAND_USD_PER_HOUR["p4de.24xlarge"], abs=0.01)
    priced = NodePoolConfig(instance_type="p4de.24xlarge", min_size=0, desired_size=0, max_size=2,
                            hourly_price_usd=30.0)
    assert (pool_capacity(priced).usd_per_hour_min, pool_capacity(priced).usd_per_hour_max) == (0.0, 60.0)
    assert pool_capacity(priced).price_source == "config"


def test_capacity_output_per_pool(raw):
    """The `capacity` stack output lists every pool with GPUs and cost at min and max."""
    from infra.config import parse_stack_config

    pools = capacity_output(parse_stack_config(raw("prod")))["pools"]
    assert isinstance(pools, dict) and set(pools) == {"a100", "system"}
    assert (pools["a100"]["gpusMin"], pools["a100"]["gpusMax"]) == (0, 48)  # minSize 0
    assert pools["system"]["gpusMax"] == 0 and pools["system"]["usdPerHourMin"] > 0


@pytest.mark.parametrize("stack", STACKS)
def test_render_prints_a_capacity_line_per_pool(stack):
    """`llm-stack render` notes each pool's capacity and cost, and names the offline stand-ins."""
    notes = stack_notes(ROOT, stack)
    capacity = [n for n in notes if n.startswith("capacity ")]
    assert len(capacity) == 2
    assert all("GPUs, $" in n and ("/h on demand" in n or "/h spot" in n) for n in capacity)
    assert any("cluster.eks.adminPrincipalArns" in n for n in notes)
