"""The rest of the bill beside the node pools: the fixed hourly part (control plane, NAT gateways,
the router's NLB, gp3 volumes, interface endpoints) and the per-unit items (NAT and endpoint data,
NLB capacity units, CloudWatch Logs), priced for the stack's region from a dated table.

Sources, read 2026-12-06 through the `search` tool (AWS's pricing pages render their regional
tables in JavaScript; where only a worked example or a third party shows the figure, it says so):

- EKS: $0.10 per cluster-hour in standard support, $0.60 in extended support -- confirmed, AWS
  Containers blog "Amazon EKS extended support for Kubernetes versions pricing" (2024, "unchanged"
  $0.10 standard).
- NAT gateway: $0.045 per hour and per GB processed -- confirmed for US East (Ohio) in the worked
  example of aws.amazon.com/vpc/pricing/ (as transcribed 2026-09-20); the same figures for
  N. Virginia and Oregon only from third-party guides (cloudpipelines.pages.dev, 2026): believed.
- NLB: $0.0225 per hour and $0.006 per NLCU-hour -- aws.amazon.com/elasticloadbalancing/pricing/
  us-east-1 examples (transcribed 2026-09-20; the $0.0225 hourly is stated for the ALB example,
  the NLB's equal hourly is believed); us-west-2 believed equal.
- Interface endpoints (PrivateLink): $0.01 per GB for the first PB -- confirmed,
  aws.amazon.com/privatelink/pricing/; $0.01 per endpoint per zone-hour: not shown in the page's
  static text, believed (third-party examples).
- EBS gp3: $0.08 per GB-month -- third-party only (cost comparisons citing AWS's page): believed.
- CloudWatch Logs: $0.50 per GB ingested, $0.03 per GB-month stored -- not confirmed here: believed.
- A region not in the table is priced as us-east-1, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

HOURS_PER_MONTH = 730
"""AWS's billing month for per-GB-month items turned hourly."""


@dataclass(frozen=True, kw_only=True)
class RegionRates:
    """USD list prices of one region."""

    eks_standard_hour: float
    eks_extended_hour: float
    nat_hour: float
    nat_gb: float
    nlb_hour: float
    nlb_lcu_hour: float
    endpoint_zone_hour: float
    endpoint_gb: float
    gp3_gb_month: float
    logs_ingest_gb: float
    logs_stored_gb_month: float


BILL_DATE = date(2026, 12, 6)
_US = RegionRates(eks_standard_hour=0.10, eks_extended_hour=0.60, nat_hour=0.045, nat_gb=0.045,
                  nlb_hour=0.0225, nlb_lcu_hour=0.006, endpoint_zone_hour=0.01, endpoint_gb=0.01,
                  gp3_gb_month=0.08, logs_ingest_gb=0.50, logs_stored_gb_month=0.03)
REGION_RATES: dict[str, RegionRates] = {"us-east-1": _US, "us-west-2": _US}
DEFAULT_REGION = "us-east-1"


def rates_for(region: str) -> tuple[RegionRates, str]:
    """The region's rates and where they come from (a region not in the table: us-east-1's, said)."""
    if region in REGION_RATES:
        return REGION_RATES[region], f"table {region} {BILL_DATE}"
    return REGION_RATES[DEFAULT_REGION], f"table {DEFAULT_REGION} {BILL_DATE} ({region} not in the table)"


@dataclass(frozen=True, kw_only=True)
class BillInputs:
    """What the stack creates that is billed beside its nodes."""

    region: str
    """AWS region."""
    extended_support: bool
    """Whether the Kubernetes version is in EKS extended support on the day."""
    nat_gateways: int
    """NAT gateways (one, or one per zone)."""
    load_balancers: int
    """NLBs (the router's, when exposed internal or public)."""
    gp3_gib: tuple[int, int]
    """gp3 GiB at the pools' min and max size: node root volumes plus Prometheus's volume."""
    interface_endpoints: int
    """Interface VPC endpoints (ECR api/dkr, STS when opted in)."""
    zones: int
    """Zones each interface endpoint has a network interface in (billed per zone)."""


@dataclass(frozen=True, kw_only=True)
class FixedLine:
    """One fixed item of the bill, USD per hour at the pools' min and max size."""

    item: str
    usd_per_hour_min: float
    usd_per_hour_max: float


def fixed_lines(b: BillInputs) -> list[FixedLine]:
    """The fixed hourly items (zero-count items left out)."""
    r, _ = rates_for(b.region)
    eks = r.eks_extended_hour if b.extended_support else r.eks_standard_hour
    lines = [FixedLine(item="EKS control plane" + (" (extended support)" if b.extended_support else ""),
                       usd_per_hour_min=eks, usd_per_hour_max=eks)]
    for item, count, rate in (
            (f"NAT gateways × {b.nat_gateways}", b.nat_gateways, r.nat_hour),
            (f"NLB × {b.load_balancers} (before capacity units)", b.load_balancers, r.nlb_hour),
            (f"interface endpoints × {b.interface_endpoints} in {b.zones} zones",
             b.interface_endpoints * b.zones, r.endpoint_zone_hour)):
        if count:
            lines.append(FixedLine(item=item, usd_per_hour_min=count * rate, usd_per_hour_max=count * rate))
    low, high = (gib * r.gp3_gb_month / HOURS_PER_MONTH for gib in b.gp3_gib)
    lines.append(FixedLine(item=f"EBS gp3 {b.gp3_gib[0]}..{b.gp3_gib[1]} GiB (node disks, Prometheus)",
                           usd_per_hour_min=low, usd_per_hour_max=high))
    return lines


def per_unit(b: BillInputs) -> dict[str, float]:
    """USD per unit of the usage-priced items the stack incurs."""
    r, _ = rates_for(b.region)
    out = {"natPerGB": r.nat_gb, "cloudWatchLogsIngestPerGB": r.logs_ingest_gb,
           "cloudWatchLogsStoredPerGBMonth": r.logs_stored_gb_month, "ebsGp3PerGBMonth": r.gp3_gb_month}
    if b.load_balancers:
        out["nlbPerLCUHour"] = r.nlb_lcu_hour
    if b.interface_endpoints:
        out["interfaceEndpointPerGB"] = r.endpoint_gb
    return out


def bill_lines(b: BillInputs) -> list[str]:
    """Lines for `llm-stack render`: each fixed item, the fixed total, the per-unit prices."""
    _, source = rates_for(b.region)
    lines = [f"{f.item}: ${f.usd_per_hour_min:,.3f}..${f.usd_per_hour_max:,.3f}/h" for f in fixed_lines(b)]
    low = sum(f.usd_per_hour_min for f in fixed_lines(b))
    high = sum(f.usd_per_hour_max for f in fixed_lines(b))
    lines.append(f"fixed beside the pools: ${low:,.2f}..${high:,.2f}/h ({source})")
    units = ", ".join(f"{k} ${v:g}" for k, v in per_unit(b).items())
    lines.append(f"per unit: {units}")
    return lines


def stack_bill(config: StackConfig) -> BillInputs | None:
    """What a mode-eks stack creates beside its nodes (None in mode existing: nothing)."""
    from infra.aws.endpoints import interface_endpoint_count
    from infra.aws.versions import EKS_VERSIONS

    eks = config.cluster.eks
    if config.cluster.mode != "eks" or eks is None:
        return None
    version = EKS_VERSIONS.get(config.cluster.kubernetes_version or "")
    disks = [(p.disk_gib * p.min_size, p.disk_gib * p.max_size) for p in config.node_pools.values()]
    prometheus = config.monitoring.storage_gib if config.monitoring.enabled else 0
    return BillInputs(
        region=eks.region, extended_support=bool(version and version.status(config.today) == "extended"),
        nat_gateways=len(eks.availability_zones) if eks.nat_gateways == "perAz" else 1,
        load_balancers=0 if config.router.exposure.kind == "cluster" else 1,
        gp3_gib=(sum(d[0] for d in disks) + prometheus, sum(d[1] for d in disks) + prometheus),
        interface_endpoints=interface_endpoint_count(eks.interface_endpoints),
        zones=len(eks.availability_zones))
