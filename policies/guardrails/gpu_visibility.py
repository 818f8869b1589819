"""Which GPUs a pod sees: nothing but the device plugin decides (mandatory).

The NVIDIA device plugin runs with its default `envvar` device-list strategy (pinned in
`infra/aws/addons.py`): it hands each container its GPUs as `NVIDIA_VISIBLE_DEVICES`, and the
NVIDIA container runtime injects whatever that variable names, for unprivileged containers too
(the toolkit's `accept-nvidia-visible-devices-envvar-when-unprivileged`, default true). So a pod
on a GPU node that sets `NVIDIA_VISIBLE_DEVICES=all` itself, or runs an image that does (every
CUDA base image sets it) without asking for a GPU, sees every GPU of the node, the ones the
scheduler gave other engines included.

Two rules, for every workload this program creates:
- no container sets `NVIDIA_VISIBLE_DEVICES` to anything but `void`/`none` (no GPU);
- a DaemonSet that tolerates the GPU taint and requests no GPU (the only kind `gpu-workloads`
  lets tolerate it without one) sets `NVIDIA_VISIBLE_DEVICES=void` in every container,
  so its image's value cannot reach the runtime.
dcgm-exporter is the one exception: it must see every GPU to report each (its image, any tag).

What this cannot do: refuse pods created outside this program (`kubectl`). The node-level fix is
the plugin's `volume-mounts` strategy with the toolkit set to `accept-nvidia-visible-devices-as-
volume-mounts = true` and `accept-nvidia-visible-devices-envvar-when-unprivileged = false`; that
also takes the GPUs from the device plugin and dcgm-exporter (both unprivileged, both relying on
`NVIDIA_VISIBLE_DEVICES=all`) unless they run privileged, and it edits the AMI's toolkit config
from user data: not done here (README, Guardrails).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.guardrails.config import GPU_RESOURCE, GuardrailConfig
from policies.guardrails.objects import Resource, containers, dig, mapping, pod_spec, sequence
from policies.guardrails.workloads import DAEMONSET, normalise_image

VISIBLE = "NVIDIA_VISIBLE_DEVICES"
NO_GPU = ("void", "none")
"""Values under which the NVIDIA runtime injects no GPU."""
EXPORTER_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter"
"""dcgm-exporter's image (any tag): the node agent that must see every GPU."""


def _visible(container: Mapping[str, Any]) -> str | None:
    """The container's own NVIDIA_VISIBLE_DEVICES (None: not set in its spec)."""
    for var in map(mapping, sequence(container.get("env"))):
        if var.get("name") == VISIBLE:
            return str(var.get("value")) if var.get("value") is not None else "(from a reference)"
    return None


def _is_exporter(spec: Mapping[str, Any]) -> bool:
    images = [normalise_image(str(c.get("image") or "")) for c in containers(spec)]
    return bool(images) and all(i.split("@")[0].rsplit(":", 1)[0] == EXPORTER_IMAGE for i in images)


def _tolerates(spec: Mapping[str, Any], key: str) -> bool:
    """Whether the pod tolerates taint `key` (by key, or by an `Exists` toleration of every key)."""
    for toleration in map(mapping, sequence(spec.get("tolerations"))):
        every_key = not toleration.get("key") and toleration.get("operator") == "Exists"
        if toleration.get("key") == key or every_key:
            return True
    return False


def _requests_gpu(spec: Mapping[str, Any]) -> bool:
    return any(mapping(dig(c, "resources", kind)).get(GPU_RESOURCE) is not None
               for c in containers(spec) for kind in ("requests", "limits"))


def check_gpu_visibility(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """No workload but dcgm-exporter names the GPUs it sees (`NVIDIA_VISIBLE_DEVICES`), and a
    GPU-node DaemonSet without a GPU request hides them from its image."""
    spec = pod_spec(res)
    if spec is None or _is_exporter(spec):
        return
    for container in containers(spec):
        value = _visible(container)
        if value is not None and value not in NO_GPU:
            yield (f"{res.label} container {container.get('name')!r} sets {VISIBLE}={value}: the NVIDIA "
                   f"runtime gives it those GPUs whatever the device plugin allocated (other pods' "
                   f"included); fix: remove it (request {GPU_RESOURCE}: the plugin sets it) or set it "
                   f"to void")
    if res.type == DAEMONSET and _tolerates(spec, config.gpu_taint_key) and not _requests_gpu(spec):
        unset = [str(c.get("name")) for c in containers(spec) if _visible(c) is None]  # set ones: above
        if unset:
            yield (f"{res.label} runs on GPU nodes without a GPU request, and containers {unset} leave "
                   f"{VISIBLE} to their image (CUDA images set it to all: every GPU of the node); fix: set "
                   f"env {VISIBLE}=void in each container")
