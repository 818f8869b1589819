"""The images this repository builds, each from its own Dockerfile by the program and pushed to
an ECR repository of the stack (pulumi-docker-build: BuildKit through the deploying machine's
Docker): the router (`router/Dockerfile`) and the benchmark Job's (`bench/Dockerfile`).

Pods use the pushed image's digest reference (`repo:tag@sha256:...`, docker-build's `ref`
output), so every rebuild rolls the pods that run it (a new router image also re-runs the
benchmark, whose rerun key holds the router's image), and nothing depends on an image this
repository does not build. `llm-stack:router.image` / `llm-stack:benchmark.image` set in the
stack file skip the build and use that image instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

PLATFORM = docker_build.Platform.LINUX_AMD64  # the system pool's instances (m6i / r6i) are x86_64


@dataclass(frozen=True, kw_only=True)
class ImageArgs:
    """Where the build context is and what the repository is called."""

    repository_name: str
    """ECR repository name, e.g. `llm-stack-prod/router`."""
    context_dir: str
    """The build context: the repository root (the Dockerfiles copy its packages; .dockerignore),
    relative to the program's working directory (`build_paths`: `..` under the Pulumi CLI)."""
    dockerfile: str
    """The Dockerfile, relative to the working directory like `context_dir`, e.g. `../router/Dockerfile`."""
    tag: str
    """The pushed tag (mutable, a label only): pods pin the digest."""


class ContainerImage(pulumi.ComponentResource):
    """An ECR repository (scanned on push, deleted with the stack) and one image built into it."""

    TYPE: ClassVar[str] = "llmstack:aws:ContainerImage"
    ref: pulumi.Output[str]
    """The pushed image by digest: what pods run."""

    def __init__(self, name: str, args: ImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
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
            dockerfile=docker_build.DockerfileArgs(location=args.dockerfile),
            platforms=[PLATFORM],
            push=True,
            tags=[repo.repository_url.apply(lambda url: f"{url}:{args.tag}")],
            registries=[docker_build.RegistryArgs(
                address=repo.repository_url, username=auth.user_name, password=auth.password,
            )],
            opts=child,
        )
        self.ref = image.ref
        self.register_outputs({"ref": self.ref})


class RouterImage(ContainerImage):
    """The router image, `router/Dockerfile`."""

    TYPE = "llmstack:aws:RouterImage"
    NAME: ClassVar[str] = "router"  # resource name, repository suffix and tag
    DOCKERFILE: ClassVar[str] = "router/Dockerfile"


class BenchmarkImage(ContainerImage):
    """The benchmark Job's image, `bench/Dockerfile`: `llm-stack bench` and its publisher."""

    TYPE = "llmstack:aws:BenchmarkImage"
    NAME: ClassVar[str] = "benchmark"
    DOCKERFILE: ClassVar[str] = "bench/Dockerfile"
