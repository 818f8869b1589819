"""The gpu-visibility guardrail (issue 23 item 15): with the device plugin's envvar strategy a pod
that names its own NVIDIA_VISIBLE_DEVICES, or a GPU-node DaemonSet that leaves it to its image,
would see every GPU of the node; only dcgm-exporter may."""

from __future__ import annotations

from typing import Any

import pytest
from guardrail_helpers import add, records, run, stack_config

from infra.aws.addons import device_plugin_values

TOLERATE = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
SIZED = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}


def _workload(kind: str, image: str, env: list[dict[str, str]] | None = None,
              gpus: int = 0) -> dict[str, Any]:
    resources = {k: dict(v) for k, v in SIZED.items()}
    if gpus:
        for part in resources.values():
            part["nvidia.com/gpu"] = str(gpus)
    container = {"name": "c", "image": image, "resources": resources, **({"env": env} if env else {})}
    spec = {"tolerations": TOLERATE, "nodeSelector": {"llmstack.io/node-pool": "a100"},
            "containers": [container]}
    return {"kind": kind, "metadata": {"name": "w", "namespace": "x"}, "spec": {"template": {"spec": spec}}}


def _policies(kind: str, workload: dict[str, Any]) -> list[str]:
    recs = records("prod")
    add(recs, f"kubernetes:apps/v1:{kind}", "w", workload)
    return [f.policy for f in run(recs, stack_config("prod"))]


CUDA = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
EXPORTER = "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04"
ALL = [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]
VOID = [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"}]


@pytest.mark.parametrize(("kind", "image", "env", "gpus", "expected"), [
    ("Deployment", CUDA, ALL, 1, ["gpu-visibility"]),       # an engine asking for 1 GPU, naming all
    ("DaemonSet", CUDA, ALL, 0, ["gpu-visibility"]),        # a node agent naming all
    ("DaemonSet", CUDA, None, 0, ["gpu-visibility"]),       # a node agent leaving it to its CUDA image
    ("DaemonSet", CUDA, VOID, 0, []),                       # a node agent that hides the GPUs
    ("DaemonSet", EXPORTER, ALL, 0, []),                    # dcgm-exporter: must see every GPU
    ("DaemonSet", EXPORTER, None, 0, []),
    ("Deployment", CUDA, None, 1, []),                      # an engine: the plugin sets the variable
])
def test_only_the_device_plugin_decides_which_gpus_a_pod_sees(kind, image, env, gpus, expected):
    """Each case against prod's recorded resources: only the added workload can be refused."""
    assert _policies(kind, _workload(kind, image, env, gpus)) == expected


def test_the_message_names_the_container_value_and_fix():
    """The finding names the workload, the container, the value and the fix."""
    recs = records("prod")
    add(recs, "kubernetes:apps/v1:Deployment", "w", _workload("Deployment", CUDA, ALL, 1))
    (finding,) = [f for f in run(recs, stack_config("prod")) if f.policy == "gpu-visibility"]
    assert "Deployment x/w container 'c' sets NVIDIA_VISIBLE_DEVICES=all" in finding.message
    assert "fix: remove it" in finding.message


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_pass_and_pin_the_envvar_strategy(stack):
    """No shipped workload trips the rule, and the device plugin's strategy is pinned to the one
    the rule assumes (a change to volume-mounts must come with the node side)."""
    assert [f for f in run(records(stack), stack_config(stack)) if f.policy == "gpu-visibility"] == []
    assert device_plugin_values()["deviceListStrategy"] == "envvar"
    (plugin,) = [r for r in records(stack) if r["type"] == "kubernetes:helm.sh/v3:Release"
                 and r["inputs"]["chart"] == "nvidia-device-plugin"]
    assert plugin["inputs"]["values"]["deviceListStrategy"] == "envvar"
