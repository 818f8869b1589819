"""`llm-stack:router.exposure`: who can reach the router, chosen explicitly.

```yaml
llm-stack:router:
  exposure:
    kind: internal            # cluster (default) | internal | public
    sourceRanges: [10.0.0.0/8]
    tlsCertificateArn: arn:aws:acm:us-east-1:<account>:certificate/<id>   # required for public
```
`cluster`: a ClusterIP Service, reachable from inside the cluster only. `internal`: an internal
Network Load Balancer in the VPC (AWS Load Balancer Controller). `public`: an internet-facing NLB,
only with TLS from an ACM certificate, explicit source ranges and API keys (checked in
`cluster_rules`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from infra.errors import require

EXPOSURE_KINDS = ("cluster", "internal", "public")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")


@dataclass(frozen=True, kw_only=True)
class ExposureConfig:
    """How the router's Service is exposed."""

    kind: Literal["cluster", "internal", "public"] = "cluster"
    """`cluster` (in-cluster only), `internal` (an NLB inside the VPC) or `public` (internet-facing)."""
    tls_certificate_arn: str | None = None
    """ACM certificate the NLB terminates TLS with; required for `public`, optional for `internal`."""
    source_ranges: tuple[str, ...] = ()
    """CIDRs allowed to reach the NLB; required for `public` (empty with `internal`: the VPC)."""

    def __post_init__(self) -> None:
        cert = self.tls_certificate_arn
        require(cert is None or bool(_ACM_ARN.match(cert)), "tlsCertificateArn", cert,
                "must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<uuid>)")
        require(self.kind != "cluster" or (cert is None and not self.source_ranges), "kind", self.kind,
                "must be internal or public when tlsCertificateArn or sourceRanges are set")
        require(self.kind != "public" or cert is not None, "tlsCertificateArn", cert,
                "is required with kind public: API keys never cross the internet in clear text")
        require(self.kind != "public" or bool(self.source_ranges), "sourceRanges", [],
                "is required with kind public: list the CIDRs allowed in (0.0.0.0/0 only on purpose)")
        for i, cidr in enumerate(self.source_ranges):
            try:
                ipaddress.IPv4Network(cidr, strict=True)
            except ValueError:
                require(False, f"sourceRanges[{i}]", cidr, "must be an IPv4 CIDR with no host bits set")
