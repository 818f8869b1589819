"""`BenchmarkJob` under the recording mocks: the bench command, Job limits, results publishing."""

from __future__ import annotations

import dataclasses

import pytest
from component_helpers import validate_all

from stack_components import ArgsError, BenchmarkJob, BenchmarkJobArgs, SecretRef

ARGS = BenchmarkJobArgs(
    image="ghcr.io/example/llm-stack:1.0",
    namespace="llm",
    base_url="http://router.llm.svc.cluster.local:8080",
    model="llama-8b",
    qps=(0.5, 1.0, 2.5),
    api_key=SecretRef(name="router-api-keys", key="bench"),
)


def _pod(k8s_objects) -> dict:
    return k8s_objects("Job")[0]["spec"]["template"]["spec"]


def test_objects_validate_against_the_kubernetes_schema(deploy, k8s_objects) -> None:
    """ServiceAccount, Role, RoleBinding and Job validate."""
    deploy(lambda: BenchmarkJob("bench", ARGS))
    assert sorted(o["kind"] for o in k8s_objects()) == ["Job", "Role", "RoleBinding", "ServiceAccount"]
    assert validate_all(k8s_objects()) == 4


def test_bench_runs_the_seed_workload_against_the_router(deploy, k8s_objects) -> None:
    """`llm-stack bench` gets the URL, model, workload shape, QPS sweep and --out /results."""
    deploy(lambda: BenchmarkJob("bench", ARGS))
    bench = _pod(k8s_objects)["initContainers"][0]
    args = bench["args"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert bench["command"] == ["llm-stack", "bench"]
    assert flags == {
        "--base-url": ARGS.base_url,
        "--model": "llama-8b",
        "--users": "320",
        "--rounds": "10",
        "--system-prompt-tokens": "1000",
        "--history-tokens": "20000",
        "--answer-tokens": "100",
        "--qps": "0.5,1,2.5",
        "--seed": "0",
        "--out": "/results",
    }
    assert {
        "name": "LLM_STACK_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "router-api-keys", "key": "bench"}},
    } in bench["env"]


def test_job_limits_and_no_blocking_await(deploy, k8s_objects) -> None:
    """backoffLimit and deadline are set, no TTL (Pulumi's state keeps matching the Job); Pulumi
    does not block on the Job finishing."""
    deploy(lambda: BenchmarkJob("bench", ARGS))
    (job,) = k8s_objects("Job")
    assert job["spec"]["backoffLimit"] == 1
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert job["spec"]["activeDeadlineSeconds"] == 4 * 3600
    assert job["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_config_map_mode_may_write_only_its_results(deploy, k8s_objects) -> None:
    """The Role creates ConfigMaps and reads/updates only the results one; the publisher writes it."""
    seen: list[str] = []
    deploy(lambda: BenchmarkJob("bench", ARGS).results_hint.apply(seen.append))
    (role,) = k8s_objects("Role")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["bench-results"],
            "verbs": ["get", "patch", "update"],
        },
    ]
    publish = _pod(k8s_objects)["containers"][0]
    assert publish["image"] == ARGS.image  # our own image: no third-party kubectl image
    assert publish["command"][:3] == ["python", "-m", "bench.publish"]
    assert "bench-results" in publish["command"]
    assert seen == [
        "kubectl -n llm get configmap bench-results -o jsonpath='{.data.summary\\.json}'"
        "   (logs: kubectl -n llm logs job/bench -c bench)"
    ]


def test_s3_mode_copies_results_and_needs_no_role(deploy, k8s_objects) -> None:
    """With an S3 URI the results go to S3 (IRSA annotation on the ServiceAccount), no Role."""
    args = dataclasses.replace(
        ARGS,
        results_s3_uri="s3://bucket/runs/",
        service_account_annotations={"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/b"},
    )
    seen: list[str] = []
    deploy(lambda: BenchmarkJob("bench", args).results_hint.apply(seen.append))
    assert not k8s_objects("Role")
    assert validate_all(k8s_objects()) == 2
    publish = _pod(k8s_objects)["containers"][0]
    assert publish["command"] == ["aws", "s3", "cp", "--recursive", "/results", "s3://bucket/runs/"]
    assert k8s_objects("ServiceAccount")[0]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/b"
    }
    assert seen[0].startswith("aws s3 cp --recursive s3://bucket/runs/")


def test_standalone_job_needs_a_target(deploy) -> None:
    """Outside LLMStack a missing base_url is an ArgsError naming it."""
    with pytest.raises(ArgsError, match="base_url"):
        deploy(lambda: BenchmarkJob("bench", dataclasses.replace(ARGS, base_url=None)))


def test_a_key_with_a_value_gets_its_own_secret(deploy, k8s_objects) -> None:
    """Given a key value, the Job's Secret is created beside it and the Job reads from it."""
    args = dataclasses.replace(ARGS, api_key=SecretRef(name="bench-key", key="key", value="k1"))
    deploy(lambda: BenchmarkJob("bench", args))
    secrets = k8s_objects("Secret")
    assert [s["metadata"]["name"] for s in secrets] == ["bench-key"]
    env = _pod(k8s_objects)["initContainers"][0]["env"]
    ref = {"secretKeyRef": {"name": "bench-key", "key": "key"}}
    assert {"name": "LLM_STACK_API_KEY", "valueFrom": ref} in env


def test_rerun_key_sits_in_the_immutable_pod_template(deploy, k8s_objects) -> None:
    """The serving digest is a pod-template annotation: a Job's template cannot change in place,
    so a new digest replaces the Job (delete before replace) and the benchmark runs again."""
    deploy(lambda: BenchmarkJob("bench", dataclasses.replace(ARGS, rerun_key="abc123")))
    (job,) = k8s_objects("Job")
    assert job["spec"]["template"]["metadata"]["annotations"] == {"llmstack.io/serving-sha256": "abc123"}
