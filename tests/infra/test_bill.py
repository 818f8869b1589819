"""The capacity output prices the whole bill (issue 23 item 8): the control plane, NAT gateways,
the NLB, gp3 volumes and the per-unit items beside the pools, for the stack's region and each
pool's capacity type, with the tables' dates."""

from __future__ import annotations

import dataclasses

import pytest

from infra.aws.bill import BILL_DATE, REGION_RATES, BillInputs, fixed_lines, per_unit, stack_bill
from infra.aws.prices import ON_DEMAND_USD_PER_HOUR, PRICES_DATE, pool_capacity
from infra.config import parse_stack_config
from infra.program import capacity_output


def _fixed(inputs: BillInputs) -> dict[str, tuple[float, float]]:
    return {f.item.split(" ×")[0].split(" (")[0]: (f.usd_per_hour_min, f.usd_per_hour_max)
            for f in fixed_lines(inputs)}


def test_dev_spot_pool_is_priced_for_us_west_2_as_a_spot_ceiling(raw):
    """Dev's spot g5.2xlarge in us-west-2 is priced from the us-west-2 table and labelled a spot
    ceiling, not us-east-1 on demand."""
    out = capacity_output(parse_stack_config(raw("dev")))
    gpu = out["pools"]["gpu"]  # type: ignore[index]
    assert out["region"] == "us-west-2"
    assert gpu["capacityType"] == "SPOT" and gpu["priceBasis"].startswith("spot: at most")
    assert gpu["priceSource"] == f"table us-west-2 {PRICES_DATE}"
    assert gpu["usdPerHourMax"] == pytest.approx(ON_DEMAND_USD_PER_HOUR["g5.2xlarge"], abs=0.01)


def test_prod_fixed_part(raw):
    """Prod: one control plane in standard support, a NAT gateway per zone (3), the router's NLB,
    gp3 for node disks (system 2..4 × 100 GiB, a100 0..6 × 300 GiB) and Prometheus (200 GiB)."""
    bill = stack_bill(parse_stack_config(raw("prod")))
    assert bill is not None
    assert (bill.nat_gateways, bill.load_balancers, bill.gp3_gib) == (3, 1, (400, 2400))
    fixed = _fixed(bill)
    assert fixed["EKS control plane"] == (0.10, 0.10)
    assert fixed["NAT gateways"] == pytest.approx((0.135, 0.135))
    assert fixed["NLB"] == (0.0225, 0.0225)
    assert fixed["EBS gp3 400..2400 GiB"] == pytest.approx((400 * 0.08 / 730, 2400 * 0.08 / 730))
    assert per_unit(bill)["natPerGB"] == 0.045 and per_unit(bill)["nlbPerLCUHour"] == 0.006


def test_dev_has_one_nat_and_no_nlb(raw):
    """Dev: one NAT gateway (natGateways single), no NLB (exposure cluster), so no NLB item."""
    bill = stack_bill(parse_stack_config(raw("dev")))
    assert bill is not None and (bill.nat_gateways, bill.load_balancers) == (1, 0)
    assert "NLB" not in _fixed(bill) and "nlbPerLCUHour" not in per_unit(bill)


def test_extended_support_costs_six_times_the_control_plane(raw):
    """A version in extended support on the day is billed $0.60 per cluster-hour."""
    config = parse_stack_config(raw("prod"))
    late = dataclasses.replace(config, cluster=dataclasses.replace(config.cluster, kubernetes_version="1.33"))
    bill = stack_bill(late)
    assert bill is not None and bill.extended_support
    assert _fixed(bill)["EKS control plane"] == (0.60, 0.60)


def test_region_outside_the_tables_says_so():
    """A region the tables do not price uses us-east-1's figures and names the region left out."""
    from infra.aws.bill import rates_for
    from infra.aws.prices import price_source

    assert "eu-west-1" not in REGION_RATES
    assert rates_for("eu-west-1")[1] == f"table us-east-1 {BILL_DATE} (eu-west-1 not in the table)"
    assert price_source("eu-west-1").endswith("(eu-west-1 not in the table)")


def test_capacity_total_is_pools_plus_fixed(raw):
    """The output's totals add the pools' range and the fixed part's range."""
    config = parse_stack_config(raw("prod"))
    out = capacity_output(config)
    pools = sum(pool_capacity(p, "us-east-1").usd_per_hour_max for p in config.node_pools.values())
    fixed = sum(f["usdPerHourMax"] for f in out["fixed"])  # type: ignore[union-attr, index]
    assert len(out["fixed"]) == 4  # type: ignore[arg-type]
    assert out["usdPerHourMax"] == pytest.approx(pools + fixed, abs=0.01)
    assert out["fixedPriceSource"] == f"table us-east-1 {BILL_DATE}"
