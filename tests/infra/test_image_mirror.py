"""Docker Hub images through the ECR pull-through cache: the pure rewrite, and the program with
a cache configured sending every Docker Hub pull of the serving stack (engines, Valkey, the
model store's aws-cli, Grafana) through it, waiting for the rule; other registries untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.aws.image_mirror import docker_hub_repository, grafana_registry_values, mirror_for, through_cache
from infra.stackfile import parse_stack_yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET = "arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
MIRROR = "111122223333.dkr.ecr.us-east-1.amazonaws.com/docker-hub/"


@pytest.mark.parametrize(("image", "repository"), [
    ("lmcache/vllm-openai:v0.5.6", "lmcache/vllm-openai:v0.5.6"),
    ("busybox:1.36", "library/busybox:1.36"),
    ("docker.io/valkey/valkey:8.0.2", "valkey/valkey:8.0.2"),
    ("docker.io/busybox:1.36", "library/busybox:1.36"),
    ("index.docker.io/amazon/aws-cli:2.17.64", "amazon/aws-cli:2.17.64"),
    ("quay.io/prometheus/prometheus:v3.0.0", None),
    ("nvcr.io/nvidia/k8s-device-plugin:v0.17.1", None),
    ("localhost:5000/x:1", None),
    ("123.dkr.ecr.us-east-1.amazonaws.com/llm/router:r@sha256:" + "0" * 64, None),
])
def test_docker_hub_references_are_recognised(image, repository):
    """Implicit and explicit docker.io references map to their repository (official ones under
    library/); any other registry is not Docker Hub."""
    assert docker_hub_repository(image) == repository
    assert through_cache(image, MIRROR) == (image if repository is None else MIRROR + repository)


def test_mirror_comes_from_the_credential_secrets_account_and_region():
    """ECR keeps the credential in the registry's own account and region."""
    assert mirror_for(SECRET) == MIRROR


def test_grafana_images_point_at_the_cache():
    """Grafana's registry values (the chart joins registry/repository:tag) carry the cache path."""
    values = grafana_registry_values(MIRROR)["grafana"]
    assert values["image"]["registry"] == MIRROR.rstrip("/")
    assert values["initChownData"]["image"]["registry"] == MIRROR.rstrip("/")


def _prod_with_cache() -> dict:
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["llm-stack:cluster"]["eks"]["dockerHubCredentialArn"] = SECRET
    document["config"]["llm-stack:modelStore"] = {"bucket": "llm-weights-prod", "prefix": "models"}
    return document


WORKLOADS = ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")


def _pod_images(workload) -> list[str]:
    pod = workload.inputs["spec"]["template"]["spec"]
    return [c["image"] for c in pod["containers"] + pod.get("initContainers", [])]


def _kube_prometheus_stack(mocks):
    (kps,) = [r for r in mocks.of_type("kubernetes:helm.sh/v3:Release")
              if r.inputs["chart"] == "kube-prometheus-stack"]
    return kps


def test_every_docker_hub_pull_goes_through_the_cache(run_program):
    """Prod with a cache: no pod template names a Docker Hub image any more, the ones that did
    (engine, Valkey, aws-cli) name the cache, they wait for the rule, Grafana is redirected."""
    mocks = run_program(parse_stack_yaml(_prod_with_cache()))
    (rule,) = mocks.of_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    workloads = [r for r in mocks.resources if r.type in WORKLOADS]
    images = {i for w in workloads for i in _pod_images(w)}
    assert not [i for i in images if docker_hub_repository(i) is not None]
    cached = {i.removeprefix(MIRROR).split(":")[0] for i in images if i.startswith(MIRROR)}
    assert cached == {"lmcache/vllm-openai", "valkey/valkey", "amazon/aws-cli"}
    engines = [w for w in workloads if _pod_images(w)[0].startswith(MIRROR + "lmcache/")]
    assert len(engines) == 2 and all(rule.urn in w.depends_on for w in workloads), [w.name for w in workloads]
    kps = _kube_prometheus_stack(mocks)
    assert kps.inputs["values"]["grafana"]["image"]["registry"] == MIRROR.rstrip("/")
    assert kps.inputs["values"]["grafana"]["sidecar"]["dashboards"]["enabled"] is True  # merged, not replaced


def test_without_a_cache_images_are_left_alone(run_program):
    """No credential: images as configured (Docker Hub direct), Grafana's chart defaults."""
    document = _prod_with_cache()
    del document["config"]["llm-stack:cluster"]["eks"]["dockerHubCredentialArn"]
    mocks = run_program(parse_stack_yaml(document))
    images = {i for r in mocks.of_type("kubernetes:apps/v1:Deployment") for i in _pod_images(r)}
    assert "lmcache/vllm-openai:v0.5.6" in images and not any(i.startswith(MIRROR) for i in images)
    assert not mocks.of_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    assert "image" not in _kube_prometheus_stack(mocks).inputs["values"]["grafana"]


def test_cache_secret_must_be_in_the_clusters_region(raw):
    """ECR reads the credential from its own region: another region's secret is refused."""
    from infra.config import parse_stack_config
    from infra.errors import ConfigError

    config = raw("prod")
    config["cluster"]["eks"]["dockerHubCredentialArn"] = SECRET.replace("us-east-1", "eu-west-1")
    with pytest.raises(ConfigError, match=r"dockerHubCredentialArn must be a secret in the cluster's region"):
        parse_stack_config(config)
