"""Every config rule fails before any resource, naming the full key, the value and what is allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config import SecretRef, parse_stack_config
from infra.errors import ConfigError


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation setting the dotted `path` (creating nothing: every parent must exist)."""
    def mutate(raw: dict) -> None:
        *parents, leaf = path.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    return mutate


def _delete(key: str) -> Callable[[dict], None]:
    return lambda raw: raw.pop(key)


def _both(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(raw: dict) -> None:
        for m in mutations:
            m(raw)
    return mutate


CASES = [
    # (stack, mutation, full key, a phrase of the message, rule)
    ("dev", _set("models.llama3b.tensorParallelSize", 2), "models.llama3b.tensorParallelSize",
     "must divide the 1 GPUs of a g5.2xlarge", "TP divides the node's GPUs"),
    ("staging", _set("models.llama8b.tensorParallelSize", 3), "models.llama8b.tensorParallelSize",
     "must divide the 8 GPUs of a p4d.24xlarge", "TP divides the node's 8 GPUs"),
    ("dev", _set("models.llama3b.gpuMemoryUtilization", 0), "models.llama3b.gpuMemoryUtilization",
     "must be in (0, 0.98]", "GPU memory utilisation > 0"),
    ("dev", _set("models.llama3b.gpuMemoryUtilization", 1.5), "models.llama3b.gpuMemoryUtilization",
     "must be in (0, 0.98]", "GPU memory utilisation <= 0.98"),
    ("prod", _set("models.llama70b.tensorParallelSize", 1), "models.llama70b.tensorParallelSize",
     "must leave room for the weights", "70B weights do not fit one A100-80GB"),
    ("staging", _both(_set("models.llama8b.modelId", "meta-llama/Llama-3.1-70B-Instruct"),
                      _set("models.llama8b.tensorParallelSize", 2)),
     "models.llama8b.tensorParallelSize", "must leave room for the weights", "70B on 2 × A100-40GB"),
    ("dev", _set("models.llama3b.maxModelLen", 131072), "models.llama3b.maxModelLen",
     "must fit the engine's KV cache", "one max-length sequence fits the KV cache"),
    ("prod", _set("models.llama8b.maxModelLen", 200000), "models.llama8b.maxModelLen",
     "context length 131072", "maxModelLen within the model's context"),
    ("prod", _set("lmcache.cpuBufferGiB", 200), "lmcache.cpuBufferGiB",
     "(p4de.24xlarge: 2 engines of model 'llama70b' per node, 518.4 GiB each, holding 4 buffer(s)",
     "CPU buffer per TP rank, times the ranks, fits the RAM share"),
    ("dev", _set("lmcache.cpuBufferGiB", 30), "lmcache.cpuBufferGiB", "g5.2xlarge: 1 engines",
     "CPU buffer fits a small node's RAM"),
    ("prod", _set("lmcache.diskBufferGiB", 2000), "lmcache.diskBufferGiB", "one disk buffer per TP rank",
     "disk buffer fits the NVMe share"),
    ("prod", _set("models.llama8b.nodePool", "h100"), "models.llama8b.nodePool",
     "must name a pool in llm-stack:nodePools (a100, system)", "model on a pool that does not exist"),
    ("prod", _set("models.llama8b.nodePool", "system"), "models.llama8b.nodePool",
     "must name a GPU pool", "model on a CPU pool"),
    ("dev", _set("nodePools.system.desiredSize", 5), "nodePools.system.desiredSize",
     "minSize (1) <= desiredSize <= maxSize (3)", "pool min <= desired <= max"),
    ("prod", _set("models.llama8b.replicas", 30), "models.llama8b.replicas",
     "minReplicas (4) <= replicas <= maxReplicas (24)", "model min <= replicas <= max"),
    ("prod", _set("nodePools.a100.maxSize", 2), "nodePools.a100.maxSize",
     "48 GPUs (llama70b 6×4, llama8b 24×1)", "pool holds the models' maximum replicas"),
    ("dev", _set("cluster.kubernetesVersion", "1.27"), "cluster.kubernetesVersion",
     "is no longer created by EKS (it is older than every version", "supported Kubernetes version"),
    ("dev", _set("cluster.eks.vpcCidr", "10.40.0.1/16"), "cluster.eks.vpcCidr",
     "no host bits", "CIDR without host bits"),
    ("dev", _set("cluster.eks.vpcCidr", "10.40.0.0/24"), "cluster.eks.vpcCidr", "/16 to /20",
     "VPC prefix length"),
    ("dev", _set("cluster.eks.vpcCidr", "8.8.0.0/16"), "cluster.eks.vpcCidr", "private", "RFC 1918 VPC"),
    ("dev", _set("cluster.eks.publicAccessCidrs", ["203.0.113.0/33"]), "cluster.eks.publicAccessCidrs[0]",
     "IPv4 CIDR", "endpoint CIDRs valid"),
    ("dev", _set("cluster.eks.publicAccessCidrs", []), "cluster.eks.publicAccessCidrs",
     "is required with a public endpoint", "public endpoint needs CIDRs"),
    ("dev", _set("cluster.eks.availabilityZones", ["us-west-2a", "us-east-1b"]),
     "cluster.eks.availabilityZones[1]", "zone of region us-west-2", "zones in the region"),
    ("dev", _set("cluster.mode", "existing"), "cluster.eks", "absent when mode is 'existing'",
     "eks section only with mode eks"),
    ("dev", _delete("hfToken"), "hfToken", "must be set as a secret", "HF token required"),
    ("dev", _delete("routerApiKeys"), "routerApiKeys", "router.requireApiKeys is true",
     "API keys required when the router requires them"),
    ("dev", _set("cluster.systemNodePool", "gpu"), "cluster.systemNodePool", "without GPUs",
     "system pool has no GPU"),
    ("dev", _set("cluster.systemNodePool", "infra"), "cluster.systemNodePool", "must name a pool",
     "system pool exists"),
    ("prod", _set("models.llama70b.servedName", "meta-llama/Llama-3.1-8B-Instruct"),
     "models.llama8b.servedName",
     "must be unique", "served names unique"),
    ("prod", _set("benchmark.model", "llama405b"), "benchmark.model", "llama70b, llama8b",
     "benchmark model exists"),
    ("prod", _set("lmcache.server.memoryGiB", 400), "lmcache.server.memoryGiB", "r6i.8xlarge",
     "cache server fits a system node"),
    ("prod", _set("lmcache.server.memoryGiB", 220), "lmcache.server.memoryGiB",
     "beside 12 GiB of client buffers (48 engine ranks x 8 values of 32 MiB)",
     "cache server fits beside its clients' buffers (222 GiB alone would fit 230)"),
    ("dev", _set("models.llama3b.extraArgs", ["--max-model-len=4096"]), "models.llama3b.extraArgs[0]",
     "must not set a flag the component manages", "extra args cannot override managed flags"),
    ("dev", _set("models.llama3b.extraArgs", ["--enable-chunked-prefill", "--enable-prefix-caching"]),
     "models.llama3b.extraArgs[1]", "must not set a flag the component manages",
     "the component's managed-flag rule, once, under the stack key"),
    ("dev", _set("router.policy.params", {"no_such_param": 1}), "router.policy.params.no_such_param",
     "is not a parameter of policy 'prefix'", "policy params checked by the router's own registry"),
    ("prod", _set("router.policy.params", {"sole_router": True}), "router.policy.params.sole_router",
     "needs one router pod at most, and up to 8 can run", "a sole router is one pod at most"),
    ("dev", _set("router.policy.kind", "random"), "router.policy.kind", "must be one of round_robin",
     "routing policy kind"),
    ("dev", _set("router.image", "ghcr.io/llm-stack/router:latest"), "router.image", "other than 'latest'",
     "images pinned"),
    ("dev", _set("models.llama3b.modelId", "acme/secret-model-13B"), "models.llama3b.modelId",
     "model catalogue", "model geometry known"),
    ("dev", _set("nodePools.gpu.instanceType", "g5.huge"), "nodePools.gpu.instanceType", "p4de.24xlarge",
     "instance type in the catalogue"),
    ("dev", _set("benchmark.qps", [1.0, 0.5]), "benchmark.qps", "ascending", "QPS sweep ascending"),
    ("dev", _set("nodePools.gpu.labels", {"kubernetes.io/arch": "amd64"}),
     "nodePools.gpu.labels.kubernetes.io/arch", "reserved prefix", "no reserved node labels"),
    ("prod", _set("autoscaling.models.llama405b", {"metric": "queue"}), "autoscaling.models.llama405b",
     "must name a model in llm-stack:models (llama70b, llama8b)", "autoscaling policy names a model"),
    ("prod", _set("autoscaling.models.llama70b", {"metric": "queueTime"}),
     "autoscaling.models.llama70b.target",
     "must be set (seconds) for metric queueTime", "queue-time policy needs an objective"),
    ("prod", _set("autoscaling.models.llama70b", {"metric": "ttft", "target": 2.0}),
     "autoscaling.models.llama70b.metric", "must be one of queue, kvCache, queueTime",
     "no TTFT trigger (it scales on prompt length)"),
]


@pytest.mark.parametrize(("stack", "mutate", "key", "phrase"), [c[:4] for c in CASES],
                         ids=[c[4] for c in CASES])
def test_rule_names_key_value_and_allowed(raw, stack, mutate, key, phrase):
    """The broken value fails with its full key, the value in the message and what is allowed."""
    config = raw(stack)
    mutate(config)
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    err = caught.value
    assert err.key == f"llm-stack:{key}", str(err)
    assert phrase in str(err)
    assert str(err).startswith(f"llm-stack:{key} ") and "(got " in str(err)


def test_bad_pool_key_is_named(raw):
    """A pool key that is not a DNS label (it names resources) fails naming it."""
    config = raw("dev")
    config["nodePools"]["GPU_pool"] = config["nodePools"].pop("gpu")
    config["models"]["llama3b"]["nodePool"] = "GPU_pool"
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    assert caught.value.key == "llm-stack:nodePools.GPU_pool"


def test_existing_cluster_needs_kubeconfig_secret(raw):
    """Mode `existing` needs the kubeconfig as a secret, and accepts the config once it is set."""
    config = raw("dev")
    config["cluster"]["mode"] = "existing"
    del config["cluster"]["eks"]
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    assert caught.value.key == "llm-stack:kubeconfig"
    config["kubeconfig"] = SecretRef(key="kubeconfig")
    with pytest.raises(ConfigError) as caught:  # no ECR build for a cluster we did not create
        parse_stack_config(config)
    assert caught.value.key == "llm-stack:router.image"
    config["router"]["image"] = "registry.example.com/llm-stack/router:1.0.0"
    with pytest.raises(ConfigError) as caught:  # nor for the benchmark's
        parse_stack_config(config)
    assert caught.value.key == "llm-stack:benchmark.image"
    config["benchmark"]["image"] = "registry.example.com/llm-stack/benchmark:1.0.0"
    assert parse_stack_config(config).cluster.mode == "existing"


def test_api_keys_optional_when_router_is_open(raw):
    """With requireApiKeys false, no routerApiKeys secret is needed."""
    config = raw("dev")
    config["router"]["requireApiKeys"] = False
    del config["routerApiKeys"]
    assert not parse_stack_config(config).router.require_api_keys


def test_every_case_checks_a_distinct_rule():
    """The rule table has no duplicate claims (each case documents one rule)."""
    assert len({c[4] for c in CASES}) == len(CASES) >= 35
