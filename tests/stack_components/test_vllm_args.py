"""The vLLM server's argument renderer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack_components.errors import ArgsError
from stack_components.vllm_args import VllmServerConfig, render_vllm_args

CONFIG = VllmServerConfig(
    model="meta-llama/Llama-3.1-8B-Instruct",
    revision="abc123",
    served_model_name="llama",
    tensor_parallel_size=2,
    max_model_len=32768,
    gpu_memory_utilization=0.9,
)


def _flags(args: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            nxt = args[i + 1] if i + 1 < len(args) else None
            out[arg] = None if nxt is None or nxt.startswith("--") else nxt
    return out


def test_renders_every_managed_flag_with_its_value() -> None:
    """Model, revision, name, TP, length, memory fraction, port, prefix caching are all set."""
    args = render_vllm_args(CONFIG)
    flags = _flags(args)
    assert args[0] == "meta-llama/Llama-3.1-8B-Instruct" and "--model" not in args  # positional
    assert flags["--revision"] == "abc123"
    assert flags["--served-model-name"] == "llama"
    assert flags["--tensor-parallel-size"] == "2"
    assert flags["--max-model-len"] == "32768"
    assert flags["--gpu-memory-utilization"] == "0.9"
    assert flags["--port"] == "8000"
    assert "--enable-prefix-caching" in flags


def test_lmcache_connector_is_the_kv_transfer_config() -> None:
    """With LMCache the KV connector is LMCacheConnectorV1 in kv_both role (valid JSON)."""
    flags = _flags(render_vllm_args(CONFIG))
    assert json.loads(flags["--kv-transfer-config"] or "") == {
        "kv_connector": "LMCacheConnectorV1",
        "kv_role": "kv_both",
    }


def test_without_lmcache_and_prefix_caching() -> None:
    """No LMCache: no connector flag; prefix caching off renders the negative flag."""
    import dataclasses

    args = render_vllm_args(dataclasses.replace(CONFIG, lmcache=False, enable_prefix_caching=False))
    assert "--kv-transfer-config" not in args
    assert "--no-enable-prefix-caching" in args and "--enable-prefix-caching" not in args


def test_extra_args_are_appended_in_order() -> None:
    """Non-managed extras follow the managed flags unchanged."""
    import dataclasses

    args = render_vllm_args(
        dataclasses.replace(CONFIG, extra_args=("--max-num-seqs", "256", "--dtype=bfloat16"))
    )
    assert args[-3:] == ["--max-num-seqs", "256", "--dtype=bfloat16"]


@pytest.mark.parametrize(
    "extra",
    ["--max-model-len", "--max_model_len=4096", "--port=9000", "--kv-transfer-config", "--served-model-name"],
)
def test_extra_args_colliding_with_managed_flags_are_rejected(extra: str) -> None:
    """A managed flag in extras (either spelling) raises an ArgsError naming it."""
    import dataclasses

    with pytest.raises(ArgsError, match="manages") as info:
        render_vllm_args(dataclasses.replace(CONFIG, extra_args=(extra, "1")))
    assert info.value.value == extra


@given(
    tp=st.sampled_from([1, 2, 4, 8]),
    length=st.integers(16, 1_000_000),
    util=st.floats(0.05, 0.98),
    lmcache=st.booleans(),
    prefix=st.booleans(),
)
def test_each_managed_flag_appears_once_with_a_value(
    tp: int, length: int, util: float, lmcache: bool, prefix: bool
) -> None:
    """Whatever the settings, each valued flag appears exactly once and is followed by its value."""
    import dataclasses

    config = dataclasses.replace(
        CONFIG,
        tensor_parallel_size=tp,
        max_model_len=length,
        gpu_memory_utilization=util,
        lmcache=lmcache,
        enable_prefix_caching=prefix,
    )
    args = render_vllm_args(config)
    assert args[0] == CONFIG.model and "--model" not in args
    for flag in (
        "--revision",
        "--served-model-name",
        "--port",
        "--tensor-parallel-size",
        "--max-model-len",
        "--gpu-memory-utilization",
    ):
        assert args.count(flag) == 1 and not args[args.index(flag) + 1].startswith("--")
    assert float(args[args.index("--gpu-memory-utilization") + 1]) == pytest.approx(util, rel=1e-5)
    assert ("--kv-transfer-config" in args) == lmcache


def test_probes_and_scrapes_are_left_out_of_the_access_log() -> None:
    """`--disable-access-log-for-endpoints` names the probe/health-check and scrape paths, once."""
    args = render_vllm_args(CONFIG)
    assert _flags(args)["--disable-access-log-for-endpoints"] == "/health,/metrics"
    assert args.count("--disable-access-log-for-endpoints") == 1


def test_kv_events_publish_on_the_contract_ports_with_the_pod_ip_topic() -> None:
    """KV events: ZMQ PUB on every interface at the events port, replay on its own port, the topic
    `kv@$(POD_IP):<port>@<served name>` (Kubernetes expands the reference); block size and hash
    algorithm fixed from `contracts.kv_events`."""
    from contracts import kv_events as kv

    flags = _flags(render_vllm_args(CONFIG))
    assert json.loads(flags["--kv-events-config"] or "") == {
        "enable_kv_cache_events": True,
        "publisher": "zmq",
        "endpoint": "tcp://*:5557",
        "replay_endpoint": "tcp://*:5558",
        "buffer_steps": kv.KV_REPLAY_BUFFER_STEPS,
        "topic": "kv@$(POD_IP):8000@llama",
    }
    assert flags["--block-size"] == "16" and flags["--prefix-caching-hash-algo"] == "sha256_cbor"


def test_kv_events_off_keeps_block_size_and_hash_algorithm() -> None:
    """Without KV events no `--kv-events-config`; block size and hash algorithm stay fixed."""
    import dataclasses

    flags = _flags(render_vllm_args(dataclasses.replace(CONFIG, kv_events=False)))
    assert "--kv-events-config" not in flags
    assert flags["--block-size"] == "16" and flags["--prefix-caching-hash-algo"] == "sha256_cbor"


@pytest.mark.parametrize("flag", ["--block-size=32", "--prefix-caching-hash-algo", "--kv-events-config"])
def test_extra_args_may_not_set_the_kv_event_flags(flag) -> None:
    """Block size, hash algorithm and the event config are the component's: extra_args refused."""
    import dataclasses

    with pytest.raises(ArgsError, match="extra_args"):
        render_vllm_args(dataclasses.replace(CONFIG, extra_args=(flag, "x")))
