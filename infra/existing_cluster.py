"""Mode `existing`: deploy onto a cluster someone else runs, from the secret kubeconfig."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.aws.eks_stack import ClusterHandle
from infra.config.stack import StackConfig


def use_existing(config: StackConfig, kubeconfig: pulumi.Input[str]) -> ClusterHandle:
    """A provider for the existing cluster; its node pools must carry the `llmstack.io/node-pool` label."""
    secret = pulumi.Output.secret(kubeconfig)
    provider = k8s.Provider("existing", kubeconfig=secret)
    return ClusterHandle(provider=provider, kubeconfig=secret, name=config.cluster.name)
