"""`llm-stack:monitoring`: its keys validated with the full key named, receivers needing their
secret, and the mapping to `MonitoringArgs` (thresholds, capacity, trusted namespace)."""

from __future__ import annotations

import pytest

from infra.config import SecretRef, parse_stack_config
from infra.errors import ConfigError
from infra.serving import ServingSecrets, monitoring_args, stack_args
from stack_components import MonitoringExtension


@pytest.mark.parametrize(("key", "value", "phrase"), [
    ("storageGiB", 0, "must be in 1..16384"),
    ("ttftObjectiveSeconds", 0, "must be in (0, 600]"),
    ("maxWaitingPerEngine", 0, "must be in 1..10000"),
])
def test_bad_monitoring_values_name_their_key(raw, key, value, phrase):
    """Each broken value fails naming `llm-stack:monitoring.<key>` and what is allowed."""
    config = raw("prod")
    config["monitoring"][key] = value
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    assert caught.value.key == f"llm-stack:monitoring.{key}" and phrase in str(caught.value)


def test_receivers_need_their_secret(raw):
    """A receiver without `alertReceiverSecrets` fails naming the secret; set, the config parses."""
    config = raw("dev")
    config["monitoring"]["receivers"] = {"team": {"kind": "slack", "channel": "#llm"}}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    assert caught.value.key == "llm-stack:alertReceiverSecrets"
    config["alertReceiverSecrets"] = SecretRef(key="alertReceiverSecrets")
    assert parse_stack_config(config).monitoring.receivers["team"].channel == "#llm"


def test_channel_only_for_slack(raw):
    """A webhook receiver with a Slack channel fails naming the receiver's key."""
    config = raw("dev")
    config["monitoring"]["receivers"] = {"hook": {"kind": "webhook", "channel": "#x"}}
    config["alertReceiverSecrets"] = SecretRef(key="alertReceiverSecrets")
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    assert caught.value.key == "llm-stack:monitoring.receivers.hook.channel"


def test_prod_monitoring_args_follow_the_config(raw):
    """Thresholds, storage, replica bounds by served name, pool limits (GPUs per node from the
    instance type), and the monitoring namespace trusted by the engines' NetworkPolicy."""
    config = parse_stack_config(raw("prod"))
    secrets = ServingSecrets(hf_token="hf", router_api_keys="k", grafana_admin_password="pw")
    mon = monitoring_args(config, secrets)
    assert mon is not None and mon.stack_namespace == config.namespace
    assert (mon.storage_gib, mon.ttft_objective_s, mon.retention_days) == (200, 2.0, 30)
    assert set(mon.models) == {config.served_name(k) for k in config.models}
    assert {k: p.gpus_per_node for k, p in mon.pools.items()} == {"a100": 8, "system": 0}
    args = stack_args(config, secrets)
    assert isinstance(args.monitoring, MonitoringExtension) and args.trusted_namespaces == ("monitoring",)
    paths = ["/d/llm-stack-serving", "/d/llm-stack-gpus", "/d/llm-stack-capacity"]
    assert args.monitoring.dashboard_paths() == paths


def test_disabled_monitoring_builds_nothing(raw):
    """`enabled: false` leaves the seam empty and trusts no extra namespace."""
    config = raw("dev")
    config["monitoring"]["enabled"] = False
    args = stack_args(parse_stack_config(config), ServingSecrets(hf_token="hf", router_api_keys="k"))
    assert args.monitoring is None and args.trusted_namespaces == ()
