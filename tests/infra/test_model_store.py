"""The S3 model store (`llm-stack:modelStore`, issue 7 item 5): config rules naming the key, the
read-only role scoped to the bucket/prefix, the gateway endpoint on the private route tables, and
the engines' ServiceAccount and copying init container (present only when configured)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from infra.aws.model_store import read_policy, service_account_name
from infra.config import parse_stack_config
from infra.config.services import bucket_name_problem
from infra.errors import ConfigError
from infra.mocks import RecordingMocks
from infra.stackfile import parse_stack_yaml, raw_project_config
from stack_components.model_store import COMPLETE_MARKER, ROLE_ARN_ANNOTATION, SYNC_SCRIPT

ROOT = Path(__file__).resolve().parents[2]
STORE = {"bucket": "acme-llm-weights", "prefix": "hf/models"}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"


def _raw_config(document: dict) -> dict:
    return raw_project_config(parse_stack_yaml(document))


def _prod_with(store: dict | None) -> dict:
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    if store is not None:
        document["config"]["llm-stack:modelStore"] = store
    return document


@pytest.fixture
def with_store(run_program) -> RecordingMocks:
    return run_program(parse_stack_yaml(_prod_with(STORE)))


@pytest.mark.parametrize("name", ["acme-llm-weights", "a.b-c", "abc", "x" * 63])
def test_valid_bucket_names_pass(name):
    """Names following S3's general-purpose bucket rules have no problem."""
    assert bucket_name_problem(name) is None


@pytest.mark.parametrize("name", ["ab", "x" * 64, "Upper", "-lead", "trail-", "a..b", "192.168.5.4",
                                  "xn--abc", "sthree-abc", "amzn-s3-demo-x", "abc-s3alias", "abc--ol-s3",
                                  "abc.mrap", "abc--x-s3", "under_score"])
def test_invalid_bucket_names_are_refused(name):
    """Each S3 bucket naming rule is enforced (length, characters, ends, '..', IP form, reserved affixes)."""
    assert bucket_name_problem(name)


@pytest.mark.parametrize(("store", "key"), [
    ({"bucket": "Bad_Bucket"}, "llm-stack:modelStore.bucket"),
    ({"bucket": "ok-bucket", "prefix": "/lead"}, "llm-stack:modelStore.prefix"),
    ({"bucket": "ok-bucket", "prefix": "a//b"}, "llm-stack:modelStore.prefix"),
    ({"bucket": "ok-bucket", "region": "useast1"}, "llm-stack:modelStore.region"),
    ({"prefix": "models"}, "llm-stack:modelStore.bucket"),
])
def test_bad_model_store_names_its_key(raw, store, key):
    """A bad `modelStore` value fails with its full key."""
    config = raw("prod") | {"modelStore": store}
    with pytest.raises(ConfigError) as err:
        parse_stack_config(config)
    assert err.value.key == key


def test_model_store_needs_eks_mode(raw):
    """With an existing cluster the program creates no role, so `modelStore` is refused there."""
    from infra.config.rules import RULES

    config = parse_stack_config(raw("prod") | {"modelStore": STORE})
    existing = dataclasses.replace(config, cluster=dataclasses.replace(config.cluster, mode="existing",
                                                                           eks=None))
    (rule,) = [r for r in RULES if r.__name__ == "_model_store"]
    rule(config)
    with pytest.raises(ConfigError) as err:
        rule(existing)
    assert err.value.key == "llm-stack:modelStore"


def test_read_policy_is_scoped_to_the_prefix():
    """List only under the prefix, get only its objects; nothing else (no write, no other bucket)."""
    statements = json.loads(read_policy("b", "p/q"))["Statement"]
    assert {s["Action"] for s in statements} == {"s3:ListBucket", "s3:GetObject"}
    by_action = {s["Action"]: s for s in statements}
    assert by_action["s3:ListBucket"]["Resource"] == "arn:aws:s3:::b"
    assert by_action["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["p/q", "p/q/*"]}}
    assert by_action["s3:GetObject"]["Resource"] == "arn:aws:s3:::b/p/q/*"


def test_sync_script_skips_a_complete_copy():
    """The copy is skipped when the marker exists and the marker is written only after the sync."""
    assert SYNC_SCRIPT.index(f'-f "$2/{COMPLETE_MARKER}"') < SYNC_SCRIPT.index("aws s3 sync")
    assert SYNC_SCRIPT.rindex(COMPLETE_MARKER) > SYNC_SCRIPT.index("aws s3 sync")


def test_role_policy_is_scoped_and_trusts_the_engine_accounts(with_store):
    """The program's role may read only the configured bucket/prefix, assumed only by the models'
    engine ServiceAccounts through the cluster's OIDC provider."""
    (policy,) = [p for p in with_store.of_type("aws:iam/policy:Policy") if p.name == "model-store-read"]
    assert json.loads(policy.inputs["policy"]) == json.loads(read_policy("acme-llm-weights", "hf/models"))
    (role,) = [r for r in with_store.of_type("aws:iam/role:Role") if r.name == "model-store-reader"]
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    subs = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")][0]
    models = parse_stack_config(_raw_config(_prod_with(STORE))).models
    expected = [f"system:serviceaccount:llm-stack:{service_account_name(m)}" for m in models]
    assert sorted(subs) == sorted(expected)
    attached = [a for a in with_store.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.parent == role.urn]
    assert len(attached) == 1


def test_the_store_adds_no_second_s3_endpoint(with_store):
    """With the store, the weights use the network's one S3 gateway endpoint (a route table holds
    one route per service prefix list, so a second one would fail)."""
    (endpoint,) = with_store.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.name == "vpc-s3" and endpoint.inputs["vpcEndpointType"] == "Gateway"


def test_engines_run_as_the_annotated_account_and_copy_first(with_store):
    """Each engine pod runs as its model's ServiceAccount (annotated with the role), copies the
    weights in an init container after the cache owner, and vLLM loads the local directory."""
    accounts = {a.inputs["metadata"]["name"]: a for a in with_store.of_type(SERVICE_ACCOUNT)}
    engines = [d for d in with_store.of_type(DEPLOYMENT)
               if any(c["name"] == "vllm" for c in d.inputs["spec"]["template"]["spec"]["containers"])]
    assert len(engines) == 2  # prod: two models
    for engine in engines:
        pod = engine.inputs["spec"]["template"]["spec"]
        account = accounts[pod["serviceAccountName"]]
        role_arn = account.inputs["metadata"]["annotations"][ROLE_ARN_ANNOTATION]
        assert role_arn.endswith("role/model-store-reader")
        names = [c["name"] for c in pod["initContainers"]]
        assert names == ["model-cache-owner", "model-store-sync"]
        sync = pod["initContainers"][1]
        source, dest = sync["command"][-2:]
        assert source.startswith("s3://acme-llm-weights/hf/models/meta-llama/")
        vllm = pod["containers"][0]["args"]
        assert vllm[vllm.index("--model") + 1] == dest and "--revision" not in vllm
        assert "--served-model-name" in vllm
        assert sync["securityContext"]["readOnlyRootFilesystem"] is True
        assert sync["resources"]["limits"] == sync["resources"]["requests"]


def test_manifests_validate_against_the_cluster_schema(with_store):
    """The ServiceAccount and the engine Deployments with the init container are valid Kubernetes."""
    version = parse_stack_config(_raw_config(_prod_with(STORE))).cluster.kubernetes_version
    objects = [r.inputs for r in with_store.of_type(SERVICE_ACCOUNT) + with_store.of_type(DEPLOYMENT)]
    for obj in objects:
        assert kubernetes_validate.validate(obj, version, strict=True) == version
    assert len(objects) >= 4


def test_nothing_of_the_store_without_the_key(run_program):
    """Without `modelStore`: no role, no ServiceAccount, no copy; the hub path stays (the network's
    S3 gateway endpoint is there either way)."""
    mocks = run_program(parse_stack_yaml(_prod_with(None)))
    assert [e.name for e in mocks.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")] == ["vpc-s3"]
    assert not [r for r in mocks.of_type("aws:iam/role:Role") if r.name.startswith("model-store")]
    accounts = [a.inputs["metadata"]["name"] for a in mocks.of_type(SERVICE_ACCOUNT)]
    assert not [name for name in accounts if name.endswith("model-store")]
    pods = [d.inputs["spec"]["template"]["spec"] for d in mocks.of_type(DEPLOYMENT)]
    engines = [p for p in pods if any(c["name"] == "vllm" for c in p["containers"])]
    assert len(engines) == 2
    for pod in engines:
        assert "serviceAccountName" not in pod
        assert [c["name"] for c in pod.get("initContainers", [])] == ["model-cache-owner"]
        assert "--revision" in pod["containers"][0]["args"]
