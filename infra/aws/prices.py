"""A dated table of EC2 on-demand prices (Linux, us-east-1, USD per instance-hour) and each pool's
capacity and cost range at its min and max size.

The prices are believed, not checked by a tool here: AWS's public list prices as of the table's
date, after the June 2025 cut to P4d/P4de/P5 on-demand prices. Regions differ; override any pool's
price with `llm-stack:nodePools.<pool>.hourlyPriceUsd` rather than editing the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from infra.config.catalog import INSTANCES
from infra.config.pools import NodePoolConfig

PRICES_DATE = date(2026, 11, 25)
PRICES_REGION = "us-east-1"
ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    "p4d.24xlarge": 21.96, "p4de.24xlarge": 27.45, "p5.48xlarge": 55.04,
    "g5.xlarge": 1.006, "g5.2xlarge": 1.212, "g5.4xlarge": 1.624, "g5.12xlarge": 5.672, "g5.48xlarge": 16.288,
    "g6.xlarge": 0.8048,
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
    """Where the hourly price came from (the config or the dated table)."""


def pool_capacity(pool: NodePoolConfig) -> PoolCapacity:
    """Capacity and on-demand cost range of one pool (spot and reservations cost less or are prepaid)."""
    price = pool.hourly_price_usd
    source = "config"
    if price is None:
        price, source = ON_DEMAND_USD_PER_HOUR[pool.instance_type], f"table {PRICES_REGION} {PRICES_DATE}"
    gpus = INSTANCES[pool.instance_type].gpus
    return PoolCapacity(gpus_min=gpus * pool.min_size, gpus_max=gpus * pool.max_size,
                        usd_per_hour_min=round(price * pool.min_size, 2),
                        usd_per_hour_max=round(price * pool.max_size, 2), price_source=source)


def capacity_line(name: str, pool: NodePoolConfig) -> str:
    """One line for `llm-stack render`: a pool's instance, size range, GPUs and cost range."""
    cap = pool_capacity(pool)
    return (f"{name}: {pool.instance_type} × {pool.min_size}..{pool.max_size} = "
            f"{cap.gpus_min}..{cap.gpus_max} GPUs, "
            f"${cap.usd_per_hour_min:,.2f}..${cap.usd_per_hour_max:,.2f}/h on demand "
            f"({cap.price_source})")
