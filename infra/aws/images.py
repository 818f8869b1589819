"""The router image, built from `router/Dockerfile` by the program and pushed to an ECR
repository of the stack (pulumi-docker-build: BuildKit through the deploying machine's Docker).

Pods use the pushed image's digest reference (`repo:tag@sha256:...`, docker-build's `ref`
output), so every rebuild rolls the router (and re-runs the benchmark, whose image it is), and
nothing depends on an image this repository does not build. `llm-stack:router.image` set in
the stack file skips the build and uses that image instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

DOCKERFILE = "router/Dockerfile"
PLATFORM = docker_build.Platform.LINUX_AMD64  # the system pool's instances (m6i / r6i) are x86_64
TAG = "router"
"""The pushed tag (mutable, a label only): pods pin the digest."""


@dataclass(frozen=True, kw_only=True)
class RouterImageArgs:
    """Where the build context is and what the repository is called."""

    repository_name: str
    """ECR repository name, e.g. `llm-stack-prod/router`."""
    context_dir: str
    """The build context: the repository root (the Dockerfile copies router/, benchmarks/, infra/)."""
    dockerfile: str = DOCKERFILE
    """Dockerfile path relative to `context_dir`."""


class RouterImage(pulumi.ComponentResource):
    """An ECR repository (scanned on push, deleted with the stack) and the router image in it."""

    ref: pulumi.Output[str]
    """The pushed image by digest: what pods run."""

    def __init__(self, name: str, args: RouterImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmstack:aws:RouterImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repo = aws.ecr.Repository(
            f"{name}-repo", name=args.repository_name, image_tag_mutability="MUTABLE", force_delete=True,
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            opts=child,
        )
        auth = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id, opts=pulumi.InvokeOptions(
            parent=self))
        image = docker_build.Image(
            f"{name}-image",
            context=docker_build.BuildContextArgs(location=args.context_dir),
            dockerfile=docker_build.DockerfileArgs(location=f"{args.context_dir.rstrip('/')}/{args.dockerfile}"),
            platforms=[PLATFORM],
            push=True,
            tags=[repo.repository_url.apply(lambda url: f"{url}:{TAG}")],
            registries=[docker_build.RegistryArgs(
                address=repo.repository_url, username=auth.user_name, password=auth.password,
            )],
            opts=child,
        )
        self.ref = image.ref
        self.register_outputs({"ref": self.ref})
