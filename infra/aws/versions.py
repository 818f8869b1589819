"""The dated table of Kubernetes versions on Amazon EKS, and what a date means for each.

Sources, read on 2026-11-25 (dates are UTC, as AWS gives them):
- AWS's "Amazon EKS Kubernetes release calendar" (awsdocs/amazon-eks-user-guide,
  latest/ug/versioning/kubernetes-versions.adoc, commit 8596db85): 1.27-1.33.
- endoflife.date/amazon-eks (which mirrors that calendar) for the support ends of 1.34 and 1.35,
  released after the docs commit above; their EKS release dates here are those ends less 14
  months. Check both rows against `aws eks describe-cluster-versions` when refreshing.
A version is in standard support for 14 months after its EKS release, then in extended support
(billed per cluster-hour on top) for 12 more; after that EKS creates no cluster on it and
upgrades existing ones. Refresh this table (and `TABLE_DATE`) when AWS releases a version.

The table is open above: a minor newer than its newest row (one EKS released after
`TABLE_DATE`) is assumed in standard support and deploys with a warning (`untabled_warning`);
EKS itself refuses it if it is not released yet. A minor older than the oldest row had ended
before the table's date, so it is refused like an ended one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

TABLE_DATE = date(2026, 11, 25)
"""When the table was last checked against AWS's calendar."""

SupportStatus = Literal["standard", "extended", "ended", "unreleased"]


@dataclass(frozen=True, kw_only=True)
class EksVersion:
    """One Kubernetes minor version on EKS."""

    version: str
    """Minor version, e.g. `1.35`."""
    released: date
    """Amazon EKS release date."""
    standard_end: date
    """First day of extended support (billing for it starts that day, UTC)."""
    extended_end: date
    """End of extended support: no new clusters, existing ones are upgraded."""

    def status(self, today: date) -> SupportStatus:
        """Where this version stands on `today`."""
        if today < self.released:
            return "unreleased"
        if today < self.standard_end:
            return "standard"
        return "extended" if today < self.extended_end else "ended"


EKS_VERSIONS: dict[str, EksVersion] = {v.version: v for v in (
    EksVersion(version="1.35", released=date(2026, 1, 27), standard_end=date(2027, 3, 27),
               extended_end=date(2028, 3, 27)),
    EksVersion(version="1.34", released=date(2025, 10, 2), standard_end=date(2026, 12, 2),
               extended_end=date(2027, 12, 2)),
    EksVersion(version="1.33", released=date(2025, 5, 29), standard_end=date(2026, 7, 29),
               extended_end=date(2027, 7, 29)),
    EksVersion(version="1.32", released=date(2025, 1, 23), standard_end=date(2026, 3, 23),
               extended_end=date(2027, 3, 23)),
    EksVersion(version="1.31", released=date(2024, 9, 26), standard_end=date(2025, 11, 26),
               extended_end=date(2026, 11, 26)),
    EksVersion(version="1.30", released=date(2024, 5, 23), standard_end=date(2025, 7, 23),
               extended_end=date(2026, 7, 23)),
    EksVersion(version="1.29", released=date(2024, 1, 23), standard_end=date(2025, 3, 23),
               extended_end=date(2026, 3, 23)),
    EksVersion(version="1.28", released=date(2023, 9, 26), standard_end=date(2024, 11, 26),
               extended_end=date(2025, 11, 26)),
)}


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def newer_than_table(version: str) -> bool:
    """Whether `version` (a `major.minor`) is newer than every row: released after `TABLE_DATE`."""
    return _minor(version) > max(map(_minor, EKS_VERSIONS))


def status_of(version: str, today: date) -> SupportStatus:
    """Where `version` stands on `today`: the table's row, `standard` for a version newer than the
    table (assumed released: EKS refuses it otherwise), `ended` for one older than the table."""
    entry = EKS_VERSIONS.get(version)
    if entry is not None:
        return entry.status(today)
    return "standard" if newer_than_table(version) else "ended"


def untabled_warning(version: str, key: str) -> str | None:
    """A warning when `version` is newer than the table (None otherwise), naming the config key."""
    if version in EKS_VERSIONS or not newer_than_table(version):
        return None
    newest = max(EKS_VERSIONS, key=_minor)
    return (f"{key} = {version} is newer than the EKS version table (newest {newest}, checked "
            f"{TABLE_DATE.isoformat()}, infra/aws/versions.py): assumed in standard support, with no "
            f"known end date; EKS refuses the cluster if it has not released {version} in this region. "
            f"Add its row (aws eks describe-cluster-versions) to check its support dates")


def creatable(today: date) -> list[str]:
    """Versions EKS creates clusters on, on `today` (standard or extended support), newest first."""
    usable = [v.version for v in EKS_VERSIONS.values() if v.status(today) in ("standard", "extended")]
    return sorted(usable, key=_minor, reverse=True)


def newest_standard(today: date) -> str:
    """The newest version in standard support on `today`: the default for new stacks."""
    standard = [v.version for v in EKS_VERSIONS.values() if v.status(today) == "standard"]
    if not standard:
        raise LookupError(f"no EKS version in standard support on {today} in the table of {TABLE_DATE}: "
                          "refresh infra/aws/versions.py")
    return max(standard, key=_minor)


def extended_support_warning(version: str, today: date) -> str | None:
    """A warning when `version` runs in extended support on `today` (it costs more), else None."""
    entry = EKS_VERSIONS.get(version)
    if entry is None or entry.status(today) != "extended":
        return None
    return (f"Kubernetes {version} left EKS standard support on {entry.standard_end.isoformat()}: the "
            f"cluster runs in extended support (billed per cluster-hour on top of standard) until "
            f"{entry.extended_end.isoformat()}; upgrade to {newest_standard(today)}")
