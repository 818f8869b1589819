"""The Pulumi program: read the config once, build or adopt the cluster, deploy the serving
stack, export the outputs. Nothing runs at import time; `__main__.py` calls `main()`, and
`llm-stack render` / the tests call it under the mock runtime."""

from __future__ import annotations

import dataclasses

import pulumi

from infra.aws.eks_stack import ClusterHandle, build_eks
from infra.config import StackConfig, load_stack_config
from infra.engine_validation import validate_engines
from infra.errors import NAMESPACE
from infra.existing_cluster import use_existing
from infra.serving import ServingSecrets, stack_args


def read_secrets(config: StackConfig) -> dict[str, pulumi.Output[str]]:
    """The configured secrets as secret Outputs (only keys the config model saw set)."""
    reader = pulumi.Config(NAMESPACE)
    return {key: reader.require_secret(key) for key in sorted(config.secret_keys)}


def build_cluster(config: StackConfig, secrets: dict[str, pulumi.Output[str]]) -> ClusterHandle:
    """The cluster the stack lands on: a new EKS cluster, or the existing one."""
    if config.cluster.mode == "existing":
        return use_existing(config, secrets["kubeconfig"])
    return build_eks(config, pulumi.get_stack())


def build_router_image(config: StackConfig) -> pulumi.Output[str]:
    """Build router/Dockerfile and push it to the stack's ECR repository (EKS mode). The context
    is the project directory, where Pulumi runs the program (relative: renders stay portable)."""
    import pulumi_aws as aws

    from infra.aws.images import RouterImage, RouterImageArgs

    assert config.cluster.eks is not None  # rules: no image given only with mode 'eks'
    provider = aws.Provider("images", region=config.cluster.eks.region)
    image = RouterImage("router", RouterImageArgs(repository_name=f"{config.cluster.name}/router",
                                                  context_dir="."),
                        pulumi.ResourceOptions(providers=[provider]))
    return image.ref


def main() -> None:
    """Validate the config (failing before any resource), then build everything."""
    from stack_components import LLMStack

    config = load_stack_config()
    secrets = read_secrets(config)
    serving = ServingSecrets(hf_token=secrets.get("hfToken"), router_api_keys=secrets.get("routerApiKeys"))
    # Every component's Args, and vLLM/LMCache's own checks, before the first resource.
    validate_engines(stack_args(config, serving).models, pulumi.log.warn)
    if config.router.image is None:
        serving = dataclasses.replace(serving, router_image=build_router_image(config))
    args = stack_args(config, serving)
    cluster = build_cluster(config, secrets)
    opts = pulumi.ResourceOptions(provider=cluster.provider, depends_on=list(cluster.ready))
    stack = LLMStack("llm", args, opts)
    export_outputs(config, cluster, stack)


def export_outputs(config: StackConfig, cluster: ClusterHandle, stack: object) -> None:
    """Stack outputs: the router endpoint, the kubeconfig (secret), engine capacities, benchmark."""
    pulumi.export("clusterName", cluster.name)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("routerEndpoint", stack.endpoint)
    pulumi.export("namespace", config.namespace)
    pulumi.export("engineGpuCacheTokens", stack.gpu_cache_tokens)
    pulumi.export("engineCpuCacheTokens", stack.cpu_cache_tokens)
    pulumi.export("benchmarkResults", stack.benchmark_results_hint)
    if cluster.endpoint is not None:
        pulumi.export("clusterEndpoint", cluster.endpoint)
