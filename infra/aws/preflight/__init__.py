"""The read-only checks `pulumi up` runs before it creates anything: the deploying identity among
the cluster's admins, EC2 vCPU quotas and zone offerings for the node pools. Pure checks
(`identity`, `quotas`, `zones`) over a thin shell of AWS lookups
(`lookups`), composed by `run.preflight`; skipped offline (`run.offline`)."""

from infra.aws.preflight.findings import Finding, PreflightError
from infra.aws.preflight.run import PreflightResult, offline, preflight

__all__ = ["Finding", "PreflightError", "PreflightResult", "offline", "preflight"]
