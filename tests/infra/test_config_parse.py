"""The config model's generic parsing: keys, types, unknown keys, secrets, the shipped stacks."""

from __future__ import annotations

import pytest

from infra.config import SecretRef, parse_stack_config
from infra.config.parse import camel
from infra.errors import ConfigError


def _error(raw: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw)
    return caught.value


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_parse(raw, stack):
    """Every shipped Pulumi.<stack>.yaml is a valid stack configuration."""
    config = parse_stack_config(raw(stack))
    assert config.models and config.node_pools
    assert {"hfToken", "routerApiKeys"} <= config.secret_keys


def test_prod_differs_from_dev_as_designed(raw):
    """prod serves two models from p4de nodes with a 110 GiB-per-rank LMCache buffer; dev one on a g5."""
    dev, prod = parse_stack_config(raw("dev")), parse_stack_config(raw("prod"))
    assert len(prod.models) == 2 and len(dev.models) == 1
    assert {p.instance_type for p in prod.node_pools.values() if p.gpus} == {"p4de.24xlarge"}
    assert prod.lmcache.cpu_buffer_gib == 110
    def most(config):
        return max(m.max_replicas for m in config.models.values())

    assert most(prod) > most(dev)


def test_camel_keeps_unit_suffixes():
    """Field names map to camelCase keys, unit suffixes spelled as usual."""
    assert camel("tensor_parallel_size") == "tensorParallelSize"
    assert camel("disk_gib") == "diskGiB" and camel("cpu_buffer_gib") == "cpuBufferGiB"


def test_unknown_key_is_rejected_with_allowed_keys(raw):
    """A typo fails with the full key and the allowed keys (nothing is silently ignored)."""
    config = raw("dev")
    config["models"]["llama3b"]["tensorParalelSize"] = 1
    err = _error(config)
    assert err.key == "llm-stack:models.llama3b.tensorParalelSize"
    assert "tensorParallelSize" in str(err)


def test_unknown_top_level_key_is_rejected(raw):
    """An unknown `llm-stack:` key fails naming it."""
    config = raw("dev") | {"rooter": {}}
    assert _error(config).key == "llm-stack:rooter"


def test_wrong_type_names_key_and_value(raw):
    """A string where an integer belongs names the key, the value and the expected type."""
    config = raw("dev")
    config["nodePools"]["gpu"]["maxSize"] = "two"
    err = _error(config)
    assert err.key == "llm-stack:nodePools.gpu.maxSize" and err.value == "two"
    assert "must be an integer" in str(err)


def test_unquoted_version_is_rejected(raw):
    """`kubernetesVersion: 1.30` (a YAML float) is refused with a hint to quote it."""
    config = raw("dev")
    config["cluster"]["kubernetesVersion"] = 1.3
    err = _error(config)
    assert err.key == "llm-stack:cluster.kubernetesVersion" and "quote" in str(err)


def test_missing_required_key(raw):
    """A required key that is absent is named."""
    config = raw("dev")
    del config["models"]["llama3b"]["nodePool"]
    assert _error(config).key == "llm-stack:models.llama3b.nodePool"


def test_bool_is_not_an_integer(raw):
    """`replicas: true` is refused (bool is not accepted as a number)."""
    config = raw("dev")
    config["router"]["replicas"] = True
    assert _error(config).key == "llm-stack:router.replicas"


def test_literal_values_listed(raw):
    """An enum-like value lists what is allowed."""
    config = raw("dev")
    config["nodePools"]["gpu"]["capacityType"] = "spot"
    err = _error(config)
    assert err.key == "llm-stack:nodePools.gpu.capacityType" and "ON_DEMAND, SPOT" in str(err)


def test_plain_text_secret_is_rejected_without_echoing_it(raw):
    """A secret set as plain config fails, and the message never contains the value."""
    config = raw("dev") | {"hfToken": "hf_supersecretvalue"}
    err = _error(config)
    assert err.key == "llm-stack:hfToken" and "--secret" in str(err)
    assert "hf_supersecretvalue" not in str(err)


def test_section_set_as_secret_is_rejected(raw):
    """A structured section stored as a secret is refused (it must be readable config)."""
    config = raw("dev") | {"router": SecretRef(key="router")}
    assert _error(config).key == "llm-stack:router"


def test_secret_keys_recorded_not_values(raw):
    """The parsed config knows which secrets are set, never their values."""
    config = parse_stack_config(raw("staging"))
    assert config.secret_keys == frozenset({"hfToken", "routerApiKeys"})
    assert "placeholder" not in repr(config)
