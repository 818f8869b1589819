"""`BenchmarkJob`: the multi-round QA benchmark (`llm-stack bench`) as a Kubernetes Job run
against the router after the engines and router exist. The benchmark writes its results to a
shared volume; a second container publishes them (summary.json to a ConfigMap the Job's own
ServiceAccount may write, with the benchmark image's own `python -m bench.publish`, or
every file to S3 with AWS's CLI image when `results_s3_uri` is set).

The Job is kept after it finishes (no TTL by default), so Pulumi's state never points at an
object Kubernetes deleted; `rerun_key` (LLMStack: a digest of every engine container, the router
settings and images) sits in the pod template, which a Job cannot change in place, so any change
to the serving stack replaces the Job and the benchmark runs again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from stack_components import _validate as v
from stack_components.benchmark_manifests import build_bench_manifests
from stack_components.common import Placement, SecretRef
from stack_components.errors import ArgsError
from stack_components.kube import child_opts, create
from stack_components.naming import object_name

AWS_CLI_IMAGE = "amazon/aws-cli:2.22.35"  # AWS's own image, only for results_s3_uri


@dataclass(frozen=True, kw_only=True)
class BenchmarkJobArgs:
    """The benchmark workload (the seed's multi-round QA shape by default) and where results go."""

    image: pulumi.Input[str]
    """Image with `llm-stack bench` and `bench.publish` (bench/Dockerfile), pinned; may be a build's
    Output."""
    namespace: str = "default"
    """Namespace (`LLMStack` sets it)."""
    base_url: str | None = None
    """Endpoint to benchmark; None: `LLMStack` fills in its router's endpoint."""
    model: str | None = None
    """Served model name to request; None: `LLMStack` fills in its first model."""
    users: int = 320
    """Concurrent simulated users."""
    rounds: int = 10
    """Question rounds per user."""
    system_prompt_tokens: int = 1000
    """Tokens of the system prompt shared by all users."""
    history_tokens: int = 20_000
    """Tokens of each user's own history."""
    answer_tokens: int = 100
    """Tokens per answer."""
    qps: tuple[float, ...] = (1.0,)
    """Overall request rate; several values sweep (rendered comma-separated)."""
    duration_s: int | None = None
    """Seconds of launches per QPS point (`--duration`); None keeps the benchmark's default."""
    seed: int = 0
    """Workload random seed."""
    api_key: SecretRef | None = None
    """Secret key holding ONE router API key (env LLM_STACK_API_KEY), when the router requires keys."""
    results_s3_uri: str | None = None
    """When set ("s3://bucket/prefix"), every result file is copied there instead of to a ConfigMap."""
    publisher_image: str | None = None
    """Image of the publishing container; None: `image` itself (ConfigMap) or the AWS CLI (S3)."""
    rerun_key: pulumi.Input[str] | None = None
    """Opaque digest of what the benchmark measures; when it changes the Job is replaced (runs
    again). `LLMStack` sets it from the engines and router."""
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)
    """Annotations on the Job's ServiceAccount (e.g. an IRSA role ARN for S3)."""
    backoff_limit: int = 1
    """Retries of a failed benchmark pod."""
    ttl_seconds_after_finished: int | None = None
    """Seconds the finished Job (and its logs) stays; None keeps it until the next replacement
    (a TTL makes Pulumi's state point at a Job Kubernetes deleted)."""
    active_deadline_seconds: int = 4 * 3600
    """Hard limit on the Job's run time."""
    cpu: float = 2.0
    """CPU cores for the benchmark container."""
    memory_gib: int = 4
    """Memory in GiB for the benchmark container."""
    placement: Placement = field(default_factory=Placement)
    """Node selector and tolerations."""
    run_as_user: int = 10001
    """Non-root uid."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on every object."""

    def __post_init__(self) -> None:
        v.image("image", self.image)
        v.dns_label("namespace", self.namespace)
        v.require(
            self.base_url is None or self.base_url.startswith(("http://", "https://")),
            "base_url",
            self.base_url,
            "must be an http:// or https:// URL or None",
        )
        v.require(
            self.model is None or bool(self.model.strip()), "model", self.model, "must be non-empty or None"
        )
        v.int_in("users", self.users, 1, 100_000)
        v.int_in("rounds", self.rounds, 1, 10_000)
        v.int_in("system_prompt_tokens", self.system_prompt_tokens, 0, 10_000_000)
        v.int_in("history_tokens", self.history_tokens, 0, 10_000_000)
        v.int_in("answer_tokens", self.answer_tokens, 1, 1_000_000)
        v.require(
            bool(self.qps)
            and all(isinstance(q, int | float) and not isinstance(q, bool) and q > 0 for q in self.qps),
            "qps",
            self.qps,
            "must be one or more rates > 0",
        )
        v.require(
            self.duration_s is None or (isinstance(self.duration_s, int) and self.duration_s > 0),
            "duration_s",
            self.duration_s,
            "must be an integer > 0 or None",
        )
        v.int_in("seed", self.seed, 0, 2**31 - 1)
        v.require(
            self.results_s3_uri is None or self.results_s3_uri.startswith("s3://"),
            "results_s3_uri",
            self.results_s3_uri,
            "must start with s3:// or be None",
        )
        self._check_job_limits()

    def _check_job_limits(self) -> None:
        v.int_in("backoff_limit", self.backoff_limit, 0, 10)
        if self.ttl_seconds_after_finished is not None:
            v.int_in("ttl_seconds_after_finished", self.ttl_seconds_after_finished, 0, 365 * 24 * 3600)
        v.int_in("active_deadline_seconds", self.active_deadline_seconds, 60, 7 * 24 * 3600)
        v.positive("cpu", self.cpu)
        v.int_in("memory_gib", self.memory_gib, 1, 1024)
        v.int_in("run_as_user", self.run_as_user, 1, 2**31 - 1)
        v.labels("labels", self.labels)

    @property
    def publisher(self) -> pulumi.Input[str]:
        """The publishing container's image."""
        return self.publisher_image or (AWS_CLI_IMAGE if self.results_s3_uri else self.image)


def results_config_map(name: str) -> str:
    """Name of the ConfigMap the Job writes its summary to."""
    return object_name(name, "results")


def results_hint(name: str, args: BenchmarkJobArgs) -> str:
    """The command that reads the results once the Job has finished."""
    job = object_name(name)
    logs = f"kubectl -n {args.namespace} logs job/{job} -c bench"
    if args.results_s3_uri:
        return f"aws s3 cp --recursive {args.results_s3_uri} ./bench-results   (logs: {logs})"
    cm = results_config_map(name)
    return (
        f"kubectl -n {args.namespace} get configmap {cm} -o jsonpath='{{.data.summary\\.json}}'"
        f"   (logs: {logs})"
    )


class BenchmarkJob(pulumi.ComponentResource):
    """The benchmark Job, its ServiceAccount and (ConfigMap mode) the Role to write results.
    Pass `depends_on=[engines..., router]` in `opts` so it starts after they are ready."""

    results_hint: pulumi.Output[str]
    """How to read the results (a kubectl or aws command)."""
    job_name: pulumi.Output[str]
    """Name of the Job."""

    def __init__(self, name: str, args: BenchmarkJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmstack:components:BenchmarkJob", name, None, opts)
        if args.base_url is None or args.model is None:
            raise ArgsError(
                "base_url" if args.base_url is None else "model",
                None,
                "must be set when BenchmarkJob is used outside LLMStack",
            )
        child = child_opts(self, opts)
        job_base = object_name(name)
        manifests = build_bench_manifests(job_base, results_config_map(name), args)
        created = {
            kind: create(
                f"{name}-{kind}",
                m,
                pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(delete_before_replace=kind == "job")
                ),
            )
            for kind, m in manifests.items()
        }
        hint = results_hint(name, args)
        self.job_name = created["job"].metadata.apply(lambda _: job_base)
        self.results_hint = self.job_name.apply(lambda _: hint)
        self.register_outputs({"results_hint": self.results_hint, "job_name": self.job_name})
