"""The cluster and node-pool config (issue 8): EKS versions by date, required per-account values,
pool zones and reservations, router exposure. Each rule fails before any resource, naming the key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from infra.aws.versions import EKS_VERSIONS, creatable, extended_support_warning, newest_standard
from infra.config import parse_stack_config
from infra.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 25)
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0f8a6d2e-8c9b-4f5e-9a1b-2c3d4e5f6a7b"


def test_version_table_on_the_issue_date():
    """On 2026-11-25: 1.35 and 1.34 are standard, 1.31-1.33 extended, 1.30 and older ended."""
    status = {v: e.status(TODAY) for v, e in EKS_VERSIONS.items()}
    assert status == {"1.35": "standard", "1.34": "standard", "1.33": "extended", "1.32": "extended",
                      "1.31": "extended", "1.30": "ended", "1.29": "ended", "1.28": "ended"}
    assert newest_standard(TODAY) == "1.35" and creatable(TODAY) == ["1.35", "1.34", "1.33", "1.32", "1.31"]
    assert all(e.released < e.standard_end < e.extended_end for e in EKS_VERSIONS.values())


def test_extended_support_warns_with_the_date():
    """A version past standard support warns with its end date and the version to move to."""
    warning = extended_support_warning("1.33", TODAY)
    assert warning is not None and "2026-07-29" in warning and "upgrade to 1.35" in warning
    assert extended_support_warning("1.35", TODAY) is None


def test_unset_version_defaults_to_newest_standard(raw):
    """A stack without kubernetesVersion gets the newest version in standard support on the day."""
    config = raw("dev")
    del config["cluster"]["kubernetesVersion"]
    assert parse_stack_config(config, today=TODAY).cluster.kubernetes_version == "1.35"
    assert parse_stack_config(config, today=date(2026, 1, 1)).cluster.kubernetes_version == "1.34"


@pytest.mark.parametrize(("version", "phrase"), [
    ("1.30", "is no longer created by EKS (its extended support ended on 2026-07-23)"),
    ("1.27", "is no longer created by EKS (it is older than every version still supported on 2026-11-25)"),
])
def test_versions_eks_no_longer_creates_are_refused(raw, version, phrase):
    """A version past extended support (or older than the table) fails naming the key and the usable
    versions."""
    config = raw("dev")
    config["cluster"]["kubernetesVersion"] = version
    with pytest.raises(ConfigError, match="llm-stack:cluster.kubernetesVersion") as caught:
        parse_stack_config(config, today=TODAY)
    assert phrase in str(caught.value)


def test_shipped_stacks_run_in_standard_support():
    """Every shipped stack is on a version in standard support on the issue date."""
    checked = 0
    for stack in ("dev", "staging", "prod"):
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        assert 'kubernetesVersion: "1.35"' in text
        checked += 1
    assert checked == 3 and EKS_VERSIONS["1.35"].status(TODAY) == "standard"


def test_stack_files_hold_no_example_values():
    """No shipped stack file holds a documentation CIDR or the docs' example account."""
    for stack in ("dev", "staging", "prod"):
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        for example in ("123456789012", "203.0.113.", "198.51.100.", "192.0.2."):
            assert example not in text, f"Pulumi.{stack}.yaml still holds {example}"


def _eks(raw_config: dict) -> dict:
    return raw_config["cluster"]["eks"]


CASES = [
    # (mutation of cluster.eks / the config, key, phrase)
    (lambda c: _eks(c).pop("adminPrincipalArns"), "cluster.eks.adminPrincipalArns", "is required"),
    (lambda c: _eks(c).update(adminPrincipalArns=["arn:aws:iam::123456789012:role/admin"]),
     "cluster.eks.adminPrincipalArns[0]", "documentation example account"),
    (lambda c: _eks(c).pop("publicAccessCidrs"), "cluster.eks.publicAccessCidrs", "is required"),
    (lambda c: _eks(c).update(publicAccessCidrs=["203.0.113.0/24"]), "cluster.eks.publicAccessCidrs[0]",
     "documentation example"),
    (lambda c: _eks(c).update(logRetentionDays=45), "cluster.eks.logRetentionDays", "CloudWatch's periods"),
    (lambda c: c["nodePools"]["gpu"].update(availabilityZones=["us-west-2c"]),
     "nodePools.gpu.availabilityZones[0]", "must be one of cluster.eks.availabilityZones"),
    (lambda c: c["nodePools"]["gpu"].update(capacityType="CAPACITY_BLOCK"),
     "nodePools.gpu.capacityReservationId", "is required with capacityType CAPACITY_BLOCK"),
    (lambda c: c["nodePools"]["gpu"].update(capacityReservationId="cr-0123456789abcdef0"),
     "nodePools.gpu.availabilityZones", "exactly the one zone"),
    (lambda c: c["router"].update(exposure={"kind": "public", "sourceRanges": ["0.0.0.0/0"]}),
     "router.exposure.tlsCertificateArn", "API keys never cross the internet in clear text"),
    (lambda c: c["router"].update(exposure={"kind": "public", "tlsCertificateArn": CERT}),
     "router.exposure.sourceRanges", "is required with kind public"),
    (lambda c: c["router"].update(requireApiKeys=False, exposure={
        "kind": "public", "tlsCertificateArn": CERT, "sourceRanges": ["0.0.0.0/0"]}),
     "router.exposure.kind", "must not be public while router.requireApiKeys is false"),
]


@pytest.mark.parametrize(("mutate", "key", "phrase"), CASES, ids=[c[1] + ":" + c[2][:24] for c in CASES])
def test_cluster_rules_name_key_value_and_allowed(raw, mutate, key, phrase):
    """Each broken cluster value fails with its full key, the value and what is allowed."""
    config = raw("dev")
    mutate(config)
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config, today=TODAY)
    assert caught.value.key == f"llm-stack:{key}", str(caught.value)
    assert phrase in str(caught.value) and "(got " in str(caught.value)


def test_existing_cluster_gets_no_load_balancer(raw):
    """Mode existing cannot ask for an NLB (the Load Balancer Controller is installed by mode eks)."""
    config = raw("prod")
    config["cluster"] = {"mode": "existing", "name": "on-prem", "kubernetesVersion": "1.34"}
    with pytest.raises(ConfigError, match=r"llm-stack:router\.exposure\.kind must be cluster"):
        parse_stack_config(config, today=TODAY)


def test_capacity_block_pool_is_accepted(raw):
    """A Capacity Block pool with its reservation and one zone parses."""
    config = raw("prod")
    config["nodePools"]["a100"] |= {"capacityType": "CAPACITY_BLOCK", "availabilityZones": ["us-east-1b"],
                                    "capacityReservationId": "cr-0123456789abcdef0"}
    pool = parse_stack_config(config, today=TODAY).node_pools["a100"]
    assert (pool.capacity_type, pool.availability_zones) == ("CAPACITY_BLOCK", ("us-east-1b",))


def test_upgrade_policy_follows_the_support_window():
    """A version past standard support gets the EXTENDED upgrade policy (STANDARD would make EKS
    upgrade it), one in standard support STANDARD."""
    from infra.aws.cluster import access_config, support_type

    assert (support_type("1.33", TODAY), support_type("1.35", TODAY)) == ("EXTENDED", "STANDARD")
    assert access_config()["bootstrap_cluster_creator_admin_permissions"] is False


def test_load_balancer_policy_is_aws_published_file():
    """The vendored controller policy is docs/install/iam_policy.json of v3.5.0, byte for byte."""
    import hashlib

    from infra.aws.load_balancer import POLICY_FILE

    data = (ROOT / "infra" / "aws" / "policies" / POLICY_FILE).read_bytes()
    published = "16f232c9d9f79366fe949c4550ad517a202380058a9e48d45a4e215044a20a6a"
    assert hashlib.sha256(data).hexdigest() == published
