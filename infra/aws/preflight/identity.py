"""Whether the identity running `pulumi up` is one of the cluster's admins (pure).

The cluster grants its creator nothing implicitly (`infra/aws/cluster.py` `access_config`): only
the `cluster.eks.adminPrincipalArns` get access entries. If the deploying identity is not among
them, the Kubernetes provider's first call fails with 401 after EKS has spent ~15 minutes
creating the control plane. `sts:GetCallerIdentity` says who runs the program: an IAM user
(`arn:aws:iam::<account>:user/<path/name>`) or a role session
(`arn:aws:sts::<account>:assumed-role/<role name>/<session>`, IAM user guide "IAM identifiers":
the session ARN carries the role's name but not its path). An access entry's role ARN may carry
a path (EKS user guide, "Create access entries"), so a session matches a role of the same
partition, account and name, whatever its path.

A preview changes nothing, and CI previews run as a read-only role that is no admin (README,
"CI"): there the finding is a warning saying what `pulumi up` as that identity would do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.aws.preflight.findings import Finding

KEY = "cluster.eks.adminPrincipalArns"


@dataclass(frozen=True)
class Principal:
    """An IAM principal as access entries name it: partition, account, kind and name (no path)."""

    partition: str
    account: str
    kind: str  # "role" | "user"
    name: str


def principal_of(arn: str) -> Principal | None:
    """The IAM role or user behind a caller or access-entry ARN; None for anything else (the
    account root, a federated user)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    _, partition, service, _, account, resource = parts
    kind, _, rest = resource.partition("/")
    if service == "sts" and kind == "assumed-role" and "/" in rest:
        return Principal(partition, account, "role", rest.split("/")[0])
    if service == "iam" and kind in ("role", "user") and rest:
        return Principal(partition, account, kind, rest.rsplit("/", 1)[-1])
    return None


def admin_findings(caller_arn: str, admins: Sequence[str], *, deploying: bool = True) -> list[Finding]:
    """An error (a warning in a preview) unless the caller is one of `admins` (an IAM user, or a
    session of a role)."""
    caller = principal_of(caller_arn)
    if caller is not None and caller in {principal_of(arn) for arn in admins}:
        return []
    who = "not an IAM role or user" if caller is None else \
        f"{caller.kind} {caller.name} of account {caller.account}"
    hint = ("deploy as an IAM role or user listed there" if caller is None else
            f"add arn:{caller.partition}:iam::{caller.account}:{caller.kind}/<path/>{caller.name} "
            f"(pulumi config set --path 'llm-stack:{KEY}[{len(admins)}]' <arn>) or deploy as one of them")
    make = Finding.error if deploying else Finding.warning
    return [make(KEY, (
        f"the identity running `pulumi up` ({caller_arn}: {who}) is not among the cluster's admins "
        f"({', '.join(admins)}); the cluster grants its creator no access, so every Kubernetes object "
        f"would fail after the control plane is created: {hint}"))]
