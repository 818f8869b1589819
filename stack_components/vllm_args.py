"""The vLLM OpenAI server's command-line arguments for one engine (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from contracts import ENGINE_PORT, PATH_HEALTH, PATH_METRICS
from contracts.kv_events import (
    KV_BLOCK_SIZE,
    KV_EVENTS_PORT,
    KV_HASH_ALGO,
    KV_REPLAY_BUFFER_STEPS,
    KV_REPLAY_PORT,
    POD_IP_ENV,
    topic,
)
from stack_components.errors import ArgsError
from stack_components.lora import LORA_FLAGS

KV_TRANSFER_CONFIG = {"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}

MANAGED_FLAGS = (
    "--model",
    "--revision",
    "--served-model-name",
    "--tensor-parallel-size",
    "--max-model-len",
    "--gpu-memory-utilization",
    "--port",
    "--host",
    "--enable-prefix-caching",
    "--no-enable-prefix-caching",
    "--kv-transfer-config",
    "--download-dir",
    "--shutdown-timeout",
    "--disable-access-log-for-endpoints",
    "--block-size",
    "--prefix-caching-hash-algo",
    "--kv-events-config",
    *LORA_FLAGS,
)
QUIET_ENDPOINTS = (PATH_HEALTH, PATH_METRICS)
"""Paths left out of the engine's access log (vLLM 0.33 `--disable-access-log-for-endpoints`,
`vllm/entrypoints/common/cli_args.py`, exact path match without the query string in
`vllm/logging_utils/uvicorn_logging.py`): the kubelet's probes and the router's health checks
(`/health`) and the scrapes by Prometheus and the router (`/metrics`), about 10 lines/s per
engine; requests and `/v1/models` stay logged."""


@dataclass(frozen=True, kw_only=True)
class VllmServerConfig:
    """What the server-args renderer needs (a projection of `VllmEngineArgs`)."""

    model: str
    revision: str | None
    served_model_name: str
    tensor_parallel_size: int
    max_model_len: int
    gpu_memory_utilization: float
    enable_prefix_caching: bool = True
    lmcache: bool = True
    port: int = ENGINE_PORT
    shutdown_timeout_s: int = 0
    """vLLM's `--shutdown-timeout` (seconds; 0, its default, aborts in-flight requests on SIGTERM,
    > 0 drains them: `vllm/engine/arg_utils.py`, `vllm/v1/engine/core.py` at VLLM_VERSION)."""
    kv_events: bool = True
    """Publish KV-cache events (`--kv-events-config`, `kv_events_config`)."""
    lora_args: tuple[str, ...] = ()
    """vLLM's LoRA flags as `lora.render_lora_args` renders them (empty: no LoRA)."""
    extra_args: tuple[str, ...] = ()


def kv_events_config(served_model_name: str, port: int = ENGINE_PORT) -> dict[str, object]:
    """vLLM's `KVEventsConfig` as a JSON object (`vllm/config/kv_events.py` at VLLM_VERSION): ZMQ
    PUB on every interface, replay on its own port, topic `kv@$(POD_IP):<port>@<model>`: vLLM
    sends the topic as given, so Kubernetes expands `$(POD_IP)` in the container's args from its
    env (the Downward API's `status.podIP`, `engine_manifests.build_env`)."""
    return {
        "enable_kv_cache_events": True,
        "publisher": "zmq",
        "endpoint": f"tcp://*:{KV_EVENTS_PORT}",
        "replay_endpoint": f"tcp://*:{KV_REPLAY_PORT}",
        "buffer_steps": KV_REPLAY_BUFFER_STEPS,
        "topic": topic(f"$({POD_IP_ENV})", port, served_model_name),
    }


def _flag_name(arg: str) -> str:
    """'--max_model_len=4' → '--max-model-len' (vLLM accepts both spellings)."""
    return arg.split("=", 1)[0].replace("_", "-")


def check_extra_args(extra_args: Sequence[str], field_name: str = "extra_args") -> None:
    """Reject extra args that are not strings or that set a flag the component manages (the
    error names the item: `extra_args[1]`). vLLM's own parser checks the rest (`engine_check`)."""
    for i, arg in enumerate(extra_args):
        if not isinstance(arg, str):
            raise ArgsError(f"{field_name}[{i}]", arg, "must hold strings only")
        if arg.startswith("--") and _flag_name(arg) in MANAGED_FLAGS:
            raise ArgsError(
                f"{field_name}[{i}]",
                arg,
                "must not set a flag the component manages "
                f"({', '.join(MANAGED_FLAGS)}); use the matching argument instead",
            )


def render_vllm_args(config: VllmServerConfig) -> list[str]:
    """The argument list after the server entry point (`vllm serve`), the model first and
    positional: vLLM 0.33 warns that `--model` with `vllm serve` "will be removed in a future
    version" (`vllm/utils/argparse_utils.py`, FlexibleArgumentParser.parse_args, which moves it
    to the front as the positional `model_tag`; `vllm/entrypoints/cli/serve.py` then reads it)."""
    check_extra_args(config.extra_args)
    args = [
        config.model,
        *(["--revision", config.revision] if config.revision is not None else []),
        "--served-model-name",
        config.served_model_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(config.port),
        "--tensor-parallel-size",
        str(config.tensor_parallel_size),
        "--max-model-len",
        str(config.max_model_len),
        "--gpu-memory-utilization",
        f"{config.gpu_memory_utilization:g}",
        "--enable-prefix-caching" if config.enable_prefix_caching else "--no-enable-prefix-caching",
        "--shutdown-timeout",
        str(config.shutdown_timeout_s),
        "--disable-access-log-for-endpoints",
        ",".join(QUIET_ENDPOINTS),
        # fixed on every engine, so the router's block keys and the engines' agree (contracts.kv_events)
        "--block-size",
        str(KV_BLOCK_SIZE),
        "--prefix-caching-hash-algo",
        KV_HASH_ALGO,
    ]
    if config.kv_events:
        events = kv_events_config(config.served_model_name, config.port)
        args += ["--kv-events-config", json.dumps(events, separators=(",", ":"))]
    if config.lmcache:
        args += ["--kv-transfer-config", json.dumps(KV_TRANSFER_CONFIG, separators=(",", ":"))]
    return args + list(config.lora_args) + list(config.extra_args)
