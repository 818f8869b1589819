"""Pod-level guardrails: GPU placement, CPU/memory requests and limits, pinned images."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from policies.guardrails.config import GPU_RESOURCE, GuardrailConfig
from policies.guardrails.objects import Resource, containers, dig, mapping, pod_spec, sequence

DOCKER_HUB = "docker.io"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"


def _gpu(container: Mapping[str, Any], kind: str) -> Any:
    return mapping(dig(container, "resources", kind)).get(GPU_RESOURCE)


def _tolerates(spec: Mapping[str, Any], key: str) -> bool:
    return any(
        mapping(t).get("key") == key or (mapping(t).get("operator") == "Exists" and not mapping(t).get("key"))
        for t in sequence(spec.get("tolerations"))
    )


def _selects_nodes(spec: Mapping[str, Any]) -> bool:
    required = dig(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
    return bool(mapping(spec.get("nodeSelector"))) or bool(
        sequence(mapping(required).get("nodeSelectorTerms"))
    )


def _gpu_container_issues(res: Resource, container: Mapping[str, Any]) -> Iterator[str]:
    request, limit = _gpu(container, "requests"), _gpu(container, "limits")
    if request is None or limit is None or str(request) != str(limit):
        yield (
            f"{res.label} container {container.get('name')!r} has {GPU_RESOURCE} request {request!r} and "
            f"limit {limit!r}; fix: set resources.requests and resources.limits of {GPU_RESOURCE} to the "
            f"same GPU count"
        )


def check_gpu_workload(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """A pod that uses GPUs requests and limits them, tolerates the GPU taint and selects a GPU
    pool; a pod that tolerates the GPU taint uses a GPU (or it squats on a GPU node), unless it
    is a DaemonSet's (node agents such as GPU metrics exporters run on every GPU node)."""
    spec = pod_spec(res)
    if spec is None:
        return
    gpu_containers = [
        c for c in containers(spec) if _gpu(c, "requests") is not None or _gpu(c, "limits") is not None
    ]
    tolerates = _tolerates(spec, config.gpu_taint_key)
    if not gpu_containers and not tolerates:
        return
    for container in gpu_containers:
        yield from _gpu_container_issues(res, container)
    if not gpu_containers:
        if res.type == DAEMONSET:
            return
        yield (
            f"{res.label} tolerates the {config.gpu_taint_key} taint but requests no GPU; fix: request "
            f"{GPU_RESOURCE} or drop the toleration so it cannot take a GPU node"
        )
        return
    if not tolerates:
        yield (
            f"{res.label} uses GPUs but does not tolerate the {config.gpu_taint_key} taint of GPU nodes; "
            f"fix: add tolerations: [{{key: {config.gpu_taint_key}, operator: Exists, effect: NoSchedule}}]"
        )
    if not _selects_nodes(spec):
        yield (
            f"{res.label} uses GPUs but selects no node pool; fix: set spec.nodeSelector (e.g. "
            f"llmstack.io/node-pool: <gpu pool>) or a required nodeAffinity"
        )


def _missing_resources(container: Mapping[str, Any]) -> list[str]:
    res = mapping(container.get("resources"))
    return [
        f"{kind}.{name}"
        for kind in ("requests", "limits")
        for name in ("cpu", "memory")
        if mapping(res.get(kind)).get(name) in (None, "")
    ]


def check_container_resources(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """Every container (init containers too) sets CPU and memory requests and limits."""
    spec = pod_spec(res)
    for container in containers(spec or {}):
        missing = _missing_resources(container)
        if missing:
            yield (
                f"{res.label} container {container.get('name')!r} has no "
                f"resources.{', resources.'.join(missing)}; "
                "fix: set CPU and memory requests and limits on every container"
            )


def _has_registry(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost"


def normalise_image(image: str) -> str:
    """A Docker reference with its registry spelled out: `lmcache/vllm-openai:v1` ->
    `docker.io/lmcache/vllm-openai:v1`, `busybox` -> `docker.io/library/busybox`."""
    first, _, rest = image.partition("/")
    if rest and _has_registry(first):
        return image
    return f"{DOCKER_HUB}/{image}" if rest else f"{DOCKER_HUB}/library/{image}"


def normalise_prefix(prefix: str) -> str:
    """An allowed-registry entry as an image prefix: `ghcr.io` -> `ghcr.io/`, `lmcache/` ->
    `docker.io/lmcache/`, `ghcr.io/llm-stack/` unchanged. `*` matches any characters
    (`*.dkr.ecr.*.amazonaws.com/`: any account's ECR in any region)."""
    first, sep, _ = prefix.partition("/")
    if not sep:
        return f"{prefix}/"
    return prefix if _has_registry(first) else f"{DOCKER_HUB}/{prefix}"


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when it has none; a digest counts as pinned, `@`)."""
    if "@" in image:
        return "@"
    last = image.rsplit("/", 1)[-1]
    return last.partition(":")[2] or None


def _image_issue(image: Any, config: GuardrailConfig) -> str | None:
    if not isinstance(image, str) or not image:
        return "has no image"
    tag = image_tag(image)
    if tag is None or tag == "latest":
        which = "no" if tag is None else "the latest"
        return f"uses image {image!r} with {which} tag; fix: pin a version tag or digest"
    full = normalise_image(image)
    allowed = tuple(normalise_prefix(p) for p in config.allowed_registries)
    if allowed and not any(fnmatchcase(full, f"{prefix}*") for prefix in allowed):
        return (
            f"uses image {image!r} from outside the allowed registries ({', '.join(allowed)}); "
            f"fix: mirror it there"
        )
    return None


def check_pinned_images(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """Every container image carries a version tag or digest (never `latest`, never none), from
    an allowed registry when the stack names some."""
    for container in containers(pod_spec(res) or {}):
        issue = _image_issue(container.get("image"), config)
        if issue:
            yield f"{res.label} container {container.get('name')!r} {issue}"
