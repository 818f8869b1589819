"""Pure builders of a `BenchmarkJob`'s manifests and of the `llm-stack bench` command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contracts import ROLE_BENCHMARK
from stack_components import kube
from stack_components.labels import object_labels

if TYPE_CHECKING:
    from stack_components.benchmark_job import BenchmarkJobArgs

RESULTS_DIR = "/results"
API_KEY_ENV = "LLM_STACK_API_KEY"  # `llm-stack bench --api-key` reads it (kept out of the args)
SKIP_AWAIT = "pulumi.com/skipAwait"  # `pulumi up` must not block for the whole benchmark
RERUN_ANNOTATION = "llmstack.io/serving-sha256"


def render_bench_args(args: BenchmarkJobArgs) -> list[str]:
    """`llm-stack bench` flags for the workload (base_url and model must be set)."""
    out = [
        "--base-url",
        str(args.base_url),
        "--model",
        str(args.model),
        "--users",
        str(args.users),
        "--rounds",
        str(args.rounds),
        "--system-prompt-tokens",
        str(args.system_prompt_tokens),
        "--history-tokens",
        str(args.history_tokens),
        "--answer-tokens",
        str(args.answer_tokens),
        "--qps",
        ",".join(f"{q:g}" for q in args.qps),
        "--seed",
        str(args.seed),
    ]
    if args.duration_s is not None:
        out += ["--duration", str(args.duration_s)]
    return out + ["--out", RESULTS_DIR]


def publish_command(config_map: str, args: BenchmarkJobArgs) -> list[str]:
    """The publishing container's command: summary.json to the ConfigMap, or everything to S3."""
    if args.results_s3_uri:
        return ["aws", "s3", "cp", "--recursive", RESULTS_DIR, args.results_s3_uri]
    return [
        "python", "-m", "bench.publish", "--namespace", args.namespace,
        "--config-map", config_map, "--file", f"{RESULTS_DIR}/summary.json",
    ]


def build_bench_manifests(name: str, config_map: str, args: BenchmarkJobArgs) -> dict[str, dict]:
    """ServiceAccount, the API-key Secret when given a value, (ConfigMap mode) Role +
    RoleBinding, and the Job."""
    labels = object_labels(ROLE_BENCHMARK, name, args.model, args.labels)
    out: dict[str, dict] = {}
    key = args.api_key
    if key is not None and key.value is not None:
        out["secret"] = kube.secret_manifest(key.name, args.namespace, labels, key.key, key.value)
    out |= {
        "service-account": {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": kube.metadata(name, args.namespace, labels, args.service_account_annotations or None),
        }
    }
    if not args.results_s3_uri:
        out["role"] = build_results_role(name, config_map, args.namespace, labels)
        out["role-binding"] = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": kube.metadata(name, args.namespace, labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": args.namespace}],
        }
    out["job"] = build_job(name, config_map, args, labels)
    return out


def build_results_role(name: str, config_map: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """Create ConfigMaps (create cannot be limited by name), and read/update only the results one."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": kube.metadata(name, namespace, labels),
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [config_map],
                "verbs": ["get", "patch", "update"],
            },
        ],
    }


def build_job(name: str, config_map: str, args: BenchmarkJobArgs, labels: dict[str, str]) -> dict[str, Any]:
    """The Job: bench runs as an init container, the publisher runs after it."""
    pod: dict[str, Any] = {
        "serviceAccountName": name,
        "restartPolicy": "Never",
        "securityContext": kube.pod_security_context(args.run_as_user),
        "initContainers": [build_bench_container(args)],
        "containers": [build_publish_container(config_map, args)],
        "volumes": [kube.empty_dir("results", 1), kube.empty_dir("tmp", 1)],
        "tolerations": [t.to_manifest() for t in args.placement.tolerations],
    }
    if args.placement.node_selector:
        pod["nodeSelector"] = dict(args.placement.node_selector)
    template: dict[str, Any] = {"labels": labels}
    if args.rerun_key:
        template["annotations"] = {RERUN_ANNOTATION: args.rerun_key}
    spec: dict[str, Any] = {
        "backoffLimit": args.backoff_limit,
        "activeDeadlineSeconds": args.active_deadline_seconds,
        "template": {"metadata": template, "spec": pod},
    }
    if args.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = args.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": kube.metadata(name, args.namespace, labels, {SKIP_AWAIT: "true"}),
        "spec": spec,
    }


_MOUNTS = [{"name": "results", "mountPath": RESULTS_DIR}, {"name": "tmp", "mountPath": "/tmp"}]


def build_bench_container(args: BenchmarkJobArgs) -> dict[str, Any]:
    """`llm-stack bench ... --out /results`."""
    env: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}]
    if args.api_key is not None:
        env.append(kube.secret_env(API_KEY_ENV, args.api_key.name, args.api_key.key))
    return {
        "name": "bench",
        "image": args.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["llm-stack", "bench"],
        "args": render_bench_args(args),
        "env": env,
        "resources": kube.resources(cpu=args.cpu, memory_gib=args.memory_gib),
        "securityContext": kube.container_security_context(),
        "volumeMounts": list(_MOUNTS),
    }


def build_publish_container(config_map: str, args: BenchmarkJobArgs) -> dict[str, Any]:
    """Copies the results out of the pod."""
    return {
        "name": "publish",
        "image": args.publisher,
        "imagePullPolicy": "IfNotPresent",
        "command": publish_command(config_map, args),
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": kube.resources(cpu=0.25, memory_gib=1),
        "securityContext": kube.container_security_context(),
        "volumeMounts": list(_MOUNTS),
    }
