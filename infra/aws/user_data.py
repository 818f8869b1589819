"""Pure node user data: an AL2023 `nodeadm` NodeConfig in the MIME multipart form EKS managed
node groups require. Instances with NVMe get it as a RAID0 array that kubelet and containerd
use, so the engines' model cache (an emptyDir) and LMCache's disk tier land on local NVMe."""

from __future__ import annotations

import base64

BOUNDARY = "==LLMSTACK=="


def node_config(*, nvme: bool) -> str:
    """The NodeConfig document (YAML) for a pool."""
    lines = ["apiVersion: node.eks.aws/v1alpha1", "kind: NodeConfig", "spec:"]
    if nvme:
        lines += ["  instance:", "    localStorage:", "      strategy: RAID0"]
    lines += ["  kubelet:", "    config:", "      shutdownGracePeriod: 90s",
              "      shutdownGracePeriodCriticalPods: 30s"]
    return "\n".join(lines) + "\n"


def user_data(*, nvme: bool) -> str:
    """Base64 MIME multipart user data carrying the NodeConfig."""
    body = "\n".join([
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"',
        "",
        f"--{BOUNDARY}",
        "Content-Type: application/node.eks.aws",
        "",
        node_config(nvme=nvme),
        f"--{BOUNDARY}--",
        "",
    ])
    return base64.b64encode(body.encode()).decode()
