"""The EKS version table is open above (issue 23 item 12): a minor EKS released after the table's
date deploys with warnings naming the key, standard upgrade policy, and an autoscaler image of its
own minor; malformed versions and ones older than the table are still refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from infra.aws.autoscaler import IMAGE_TAGS, autoscaler_values, image_tag, image_tag_warning
from infra.aws.cluster import support_type
from infra.aws.versions import EKS_VERSIONS, status_of, untabled_warning
from infra.config import parse_stack_config
from infra.errors import ConfigError
from infra.program import version_warnings
from infra.stackfile import parse_stack_yaml

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 25)
KEY = "llm-stack:cluster.kubernetesVersion"


def test_a_version_newer_than_the_table_parses_with_warnings(raw):
    """1.36 (after the table's newest, 1.35) is accepted on the table's date, judged standard, and
    warned about twice, each warning naming the key and the value."""
    config = raw("dev")
    config["cluster"]["kubernetesVersion"] = "1.36"
    parsed = parse_stack_config(config, today=TODAY)
    assert parsed.cluster.kubernetes_version == "1.36" and "1.36" not in EKS_VERSIONS
    assert status_of("1.36", TODAY) == "standard" and support_type("1.36", TODAY) == "STANDARD"
    warnings = version_warnings(parsed)
    assert len(warnings) == 2 and all(w.startswith(f"{KEY} = 1.36") for w in warnings)
    assert "newer than the EKS version table (newest 1.35, checked 2026-11-25" in warnings[0]
    assert "deploying v1.36.0" in warnings[1]


def test_tabled_versions_get_no_new_warning():
    """A version in the table and its pinned autoscaler patch warn about neither."""
    assert untabled_warning("1.35", KEY) is None and image_tag_warning("1.35", KEY) is None
    assert all(image_tag(v) == IMAGE_TAGS[v] for v in EKS_VERSIONS)


def test_autoscaler_image_follows_an_untabled_minor():
    """The autoscaler's tag for an unpinned minor is that minor's first release, never another
    minor's (the autoscaler's versions match Kubernetes minors exactly)."""
    values = autoscaler_values(cluster_name="c", region="us-east-1", kubernetes_version="1.37",
                               role_arn="arn", system_pool="system")
    assert values["image"]["tag"] == "v1.37.0"


@pytest.mark.parametrize("version", ["1.35.2", "latest", "2.0x", "1"])
def test_malformed_versions_are_refused_naming_the_field(raw, version):
    """A value that is not `1.N` fails naming kubernetesVersion, the value and the form allowed."""
    config = raw("dev")
    config["cluster"]["kubernetesVersion"] = version
    with pytest.raises(ConfigError, match="kubernetesVersion") as caught:
        parse_stack_config(config, today=TODAY)
    assert version in str(caught.value) and 'like "1.35"' in str(caught.value)


def test_the_program_deploys_an_untabled_version(run_program):
    """Under the mocks the whole dev program builds on 1.36: the cluster and node groups at 1.36,
    the autoscaler release on v1.36.0."""
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["llm-stack:cluster"]["kubernetesVersion"] = "1.36"
    mocks = run_program(parse_stack_yaml(document))
    (cluster,) = mocks.of_type("aws:eks/cluster:Cluster")
    groups = mocks.of_type("aws:eks/nodeGroup:NodeGroup")
    releases = mocks.of_type("kubernetes:helm.sh/v3:Release")
    (scaler,) = [r for r in releases if r.inputs["chart"] == "cluster-autoscaler"]
    assert cluster.inputs["version"] == "1.36"
    assert cluster.inputs["upgradePolicy"]["supportType"] == "STANDARD"
    assert groups and {g.inputs["version"] for g in groups} == {"1.36"}
    assert scaler.inputs["values"]["image"]["tag"] == "v1.36.0"
