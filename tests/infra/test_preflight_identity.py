"""The deploying identity against the cluster's admins (pure): a role session matches its role
whatever the role's path, a user matches itself, anyone else is refused with the ARN to add."""

from __future__ import annotations

import pytest

from infra.aws.preflight.identity import Principal, admin_findings, principal_of

ACCOUNT = "210987654321"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/ci/llm-stack-deploy"
ADMINS = (DEPLOY, f"arn:aws:iam::{ACCOUNT}:user/alice")


@pytest.mark.parametrize(("arn", "principal"), [
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/llm-stack-deploy/gha-123",
     Principal("aws", ACCOUNT, "role", "llm-stack-deploy")),
    (DEPLOY, Principal("aws", ACCOUNT, "role", "llm-stack-deploy")),
    (f"arn:aws:iam::{ACCOUNT}:user/alice", Principal("aws", ACCOUNT, "user", "alice")),
    (f"arn:aws-cn:iam::{ACCOUNT}:user/team/bob", Principal("aws-cn", ACCOUNT, "user", "bob")),
    (f"arn:aws:iam::{ACCOUNT}:root", None),
    (f"arn:aws:sts::{ACCOUNT}:federated-user/carol", None),
    ("not-an-arn", None),
])
def test_principal_of_callers_and_entries(arn, principal):
    """Sessions become their role (the session ARN has no path); entries drop their path."""
    assert principal_of(arn) == principal


@pytest.mark.parametrize("caller", [f"arn:aws:sts::{ACCOUNT}:assumed-role/llm-stack-deploy/gha-123",
                                    f"arn:aws:iam::{ACCOUNT}:user/alice"])
def test_an_admin_passes(caller):
    """A session of an admin role, or an admin user, raises nothing."""
    assert admin_findings(caller, ADMINS) == []


@pytest.mark.parametrize("caller", [
    f"arn:aws:sts::{ACCOUNT}:assumed-role/developer/laptop",
    "arn:aws:sts::999999999999:assumed-role/llm-stack-deploy/gha-123",  # same name, other account
    f"arn:aws:iam::{ACCOUNT}:root",
])
def test_anyone_else_is_refused_naming_the_arn_to_add(caller):
    """Another role, the same role name in another account, or the root user: one error naming
    the caller, the admins and the config command."""
    (finding,) = admin_findings(caller, ADMINS)
    assert finding.level == "error" and finding.key == "cluster.eks.adminPrincipalArns"
    assert caller in finding.message and DEPLOY in finding.message
    if ":root" not in caller:
        account = caller.split(":")[4]
        assert f"arn:aws:iam::{account}:role/<path/>" in finding.message
        assert "adminPrincipalArns[2]" in finding.message


def test_a_preview_only_warns():
    """`pulumi preview` (a read-only CI role, no admin) gets the same text as a warning."""
    (finding,) = admin_findings(f"arn:aws:sts::{ACCOUNT}:assumed-role/llm-stack-preview/pr-7", ADMINS,
                                deploying=False)
    assert finding.level == "warning" and "llm-stack-preview" in finding.message
