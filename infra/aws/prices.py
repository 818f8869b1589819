"""A dated table of EC2 on-demand prices (Linux, USD per instance-hour) and each pool's capacity
and cost range at its min and max size, priced for the stack's region and the pool's capacity type.

The prices are believed, not checked by a tool here: AWS's public us-east-1 list prices as of the
table's date, after the June 2025 cut to P4d/P4de/P5 on-demand prices; us-west-2's are believed
equal for these types (not confirmed: AWS's EC2 pricing page renders its tables in JavaScript). A
region outside `EC2_REGIONS` is priced as us-east-1 and says so. Spot pools are billed the hour's
spot price, which varies by zone and hour and never exceeds on demand (the default maximum): the
on-demand figure is shown as their ceiling, not as their cost. Capacity Block pools are prepaid at
the block's price; on demand is shown for reference. Override any pool's price with
`llm-stack:nodePools.<pool>.hourlyPriceUsd` rather than editing the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from infra.config.catalog import INSTANCES
from infra.config.pools import NodePoolConfig

PRICES_DATE = date(2026, 11, 25)
PRICES_REGION = "us-east-1"
EC2_REGIONS = ("us-east-1", "us-west-2")
"""Regions the table prices (us-west-2 believed equal to us-east-1 for these types)."""
BASIS = {"ON_DEMAND": "on demand", "SPOT": "spot: at most (the on-demand ceiling; spot varies hourly)",
         "CAPACITY_BLOCK": "Capacity Block: prepaid (on demand shown for reference)"}
ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    "p4d.24xlarge": 21.96, "p4de.24xlarge": 27.45, "p5.48xlarge": 55.04,
    "g5.xlarge": 1.006, "g5.2xlarge": 1.212, "g5.4xlarge": 1.624, "g5.12xlarge": 5.672, "g5.48xlarge": 16.288,
    "g6.xlarge": 0.8048, "g6.2xlarge": 0.9776,
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384, "m6i.4xlarge": 0.768,
    "r6i.4xlarge": 1.008, "r6i.8xlarge": 2.016,
}


@dataclass(frozen=True, kw_only=True)
class PoolCapacity:
    """A pool's GPUs and on-demand cost at its min and max size."""

    gpus_min: int
    """GPUs at `minSize`."""
    gpus_max: int
    """GPUs at `maxSize` (what the models' max replicas must fit)."""
    usd_per_hour_min: float
    """On-demand cost per hour at `minSize`."""
    usd_per_hour_max: float
    """On-demand cost per hour at `maxSize`."""
    price_source: str
    """Where the hourly price came from (the config or the dated table, with its region)."""
    basis: str
    """What the figure means for the pool's capacity type (on demand, a spot ceiling, a Capacity Block)."""


def price_source(region: str) -> str:
    """The table's label for `region` (a region it does not price: us-east-1's, said)."""
    if region in EC2_REGIONS:
        return f"table {region} {PRICES_DATE}"
    return f"table {PRICES_REGION} {PRICES_DATE} ({region} not in the table)"


def pool_capacity(pool: NodePoolConfig, region: str = PRICES_REGION) -> PoolCapacity:
    """Capacity and cost range of one pool in `region` (on demand; a ceiling for spot)."""
    price = pool.hourly_price_usd
    source = "config"
    if price is None:  # the dearest type the group may launch: a ceiling
        price, source = max(ON_DEMAND_USD_PER_HOUR[t] for t in pool.instance_types), price_source(region)
    gpus = INSTANCES[pool.instance_type].gpus
    return PoolCapacity(gpus_min=gpus * pool.min_size, gpus_max=gpus * pool.max_size,
                        usd_per_hour_min=round(price * pool.min_size, 2),
                        usd_per_hour_max=round(price * pool.max_size, 2), price_source=source,
                        basis=BASIS[pool.capacity_type])


def capacity_line(name: str, pool: NodePoolConfig, region: str = PRICES_REGION) -> str:
    """One line for `llm-stack render`: a pool's instance, size range, GPUs and cost range."""
    cap = pool_capacity(pool, region)
    return (f"{name}: {' or '.join(pool.instance_types)} × {pool.min_size}..{pool.max_size} = "
            f"{cap.gpus_min}..{cap.gpus_max} GPUs, "
            f"${cap.usd_per_hour_min:,.2f}..${cap.usd_per_hour_max:,.2f}/h {cap.basis} "
            f"({cap.price_source})")
