"""Check engine settings with vLLM's and LMCache's own code. Runs INSIDE the engine-check tool
venv (`.venv-engine`, the image's vLLM and LMCache versions), never imported by the package:

    .venv-engine/bin/python stack_components/engine_probe.py < cases.json > results.json

stdin: a JSON list of cases `{"name", "command": [...], "env": {NAME: VALUE}}` (a container's
command + args and its plain env). stdout: a JSON object `{"versions": {...}, "results":
[{"name", "errors": [...], "values": {...}}]}` (`values`: the `REPORTED` engine arguments as
vLLM parsed them, when the case passed). Only the standard library, vLLM and LMCache
are imported here. What is checked (all on a CPU-only machine):

- vLLM: the command is the image's `vllm serve`; vLLM's own `serve` parser (built as `vllm`'s
  CLI main builds it, with the platform set to CPU) parses every flag; `serve`'s own
  `validate()` runs; `AsyncEngineArgs.from_cli_args` builds the engine arguments; the
  `--kv-transfer-config` connector is looked up in vLLM's connector registry and its class
  imported (for LMCacheConnectorV1 this imports LMCache's vLLM integration).
- LMCache: every `LMCACHE_*` variable names a key of LMCache's `_CONFIG_DEFINITIONS` (or one
  of its aliases); each value goes through that key's own `env_converter`; then
  `LMCacheEngineConfig.from_env()` loads them and `validate()` runs.

Left out (needs a GPU, the network or the model's files): `create_engine_config()` (reads the
model's config.json from the Hub and probes the device), the LMCache engine's allocation.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import json
import os
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import PurePosixPath
from typing import Any

LMCACHE_PREFIX = "LMCACHE_"
REPORTED = ("shutdown_timeout", "model", "block_size", "prefix_caching_hash_algo", "kv_events_config",
            "enable_lora")
"""Engine arguments whose parsed values the probe reports (`AsyncEngineArgs` fields), so the
caller can check vLLM reads them as it meant (a drain in seconds, not the abort default; the
model; the KV-event publisher's settings as vLLM's `KVEventsConfig` holds them; LoRA on or
off). With LoRA on, `lora_config` (vLLM's `LoRAConfig` as `create_engine_config` builds it)
and `lora_modules` (the server's `--lora-modules` as parsed: name, path, base model) follow."""
ACCESS_PATHS = ("/health", "/metrics", "/ping", "/v1/models", "/v1/chat/completions", "/v1/completions")
"""Request paths the probe hands vLLM's own uvicorn access-log filter (reported under
`access_log_silenced`: those whose access lines the server would drop)."""


def _serve_parser() -> argparse.ArgumentParser:
    """vLLM's CLI parser with only the `serve` subcommand, built the way `vllm`'s main does."""
    from vllm import platforms
    from vllm.platforms.cpu import CpuPlatform

    platforms.current_platform = CpuPlatform()  # no GPU here: vLLM's parser needs a platform
    from vllm.entrypoints.cli import serve
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(description="vLLM CLI")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    for cmd in serve.cmd_init():
        cmd.subparser_init(subparsers).set_defaults(validate=cmd.validate)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace | None, str]:
    """Parse; on argparse's exit, the message it printed."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        return None, lines[-1] if lines else "vLLM's parser exited"
    # what `vllm serve` does first (vllm/entrypoints/cli/serve.py, ServeSubcommand.cmd): the
    # positional model (where the parser also moves a `--model`) is the model
    if getattr(args, "model_tag", None) is not None:
        args.model = args.model_tag
    return args, ""


def check_vllm(parser: argparse.ArgumentParser, command: list[str]) -> list[str]:
    """Errors of one engine command line, each naming the flag or value vLLM refused."""
    if len(command) < 2 or PurePosixPath(command[0]).name != "vllm" or command[1] != "serve":
        return [f"command must be the image's `vllm serve` entrypoint (got {command[:2]!r})"]
    args, message = _parse(parser, command[1:])
    if args is None:
        return [f"vLLM's parser refused the command: {message}"]
    from vllm.engine.arg_utils import AsyncEngineArgs

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("vllm serve validate()", lambda: args.validate(args)),
        ("AsyncEngineArgs.from_cli_args", lambda: AsyncEngineArgs.from_cli_args(args)),
        ("--kv-transfer-config", lambda: _check_connector(args)),
        ("LoRAConfig", lambda: lora_config(AsyncEngineArgs.from_cli_args(args))),
    ]
    return [f"{what}: {type(exc).__name__}: {exc}" for what, step in steps if (exc := _run(step))]


def _convert(converter: Callable[[str], Any], text: str) -> None:
    converter(text)


def _run(step: Callable[[], Any]) -> BaseException | None:
    try:
        step()
    except (Exception, SystemExit) as exc:  # report what vLLM/LMCache raised, with its name
        return exc
    return None


def lora_config(engine_args: Any) -> Any:
    """vLLM's `LoRAConfig` from the engine arguments exactly as `create_engine_config` builds it
    (vllm/engine/arg_utils.py; its validator checks max_cpu_loras >= max_loras); None without
    `--enable-lora`. The rest of `create_engine_config` needs the model's files."""
    if not engine_args.enable_lora:
        return None
    from vllm.config.lora import LoRAConfig

    return LoRAConfig(
        max_lora_rank=engine_args.max_lora_rank, max_loras=engine_args.max_loras,
        default_mm_loras=engine_args.default_mm_loras, fully_sharded_loras=engine_args.fully_sharded_loras,
        lora_dtype=engine_args.lora_dtype, target_modules=engine_args.lora_target_modules,
        enable_tower_connector_lora=engine_args.enable_tower_connector_lora,
        specialize_active_lora=engine_args.specialize_active_lora,
        enable_mixed_moe_lora_format=engine_args.enable_mixed_moe_lora_format,
        enable_moe_shared_loras=engine_args.enable_moe_shared_loras,
        max_lora_cls_labels=engine_args.max_lora_cls_labels,
        max_cpu_loras=engine_args.max_cpu_loras if engine_args.max_cpu_loras and engine_args.max_cpu_loras > 0
        else None,
    )


def _check_connector(args: argparse.Namespace) -> None:
    config = getattr(args, "kv_transfer_config", None)
    if config is None:
        return
    from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

    name = config.kv_connector
    if name not in KVConnectorFactory._registry:
        raise ValueError(f"kv_connector {name!r} is not registered in vLLM")
    KVConnectorFactory.get_connector_class(config)


def check_lmcache(env: dict[str, str]) -> list[str]:
    """Errors of one engine's LMCache settings, each naming the variable."""
    from lmcache.v1 import config as lmc
    from lmcache.v1.config_base import _parse_quoted_string

    known = dict(lmc._CONFIG_DEFINITIONS)
    aliases = dict(lmc._CONFIG_ALIASES)
    errors: list[str] = []
    for name, value in sorted(env.items()):
        if not name.startswith(LMCACHE_PREFIX) or name == "LMCACHE_CONFIG_FILE":
            continue
        key = aliases.get(name[len(LMCACHE_PREFIX):].lower(), name[len(LMCACHE_PREFIX):].lower())
        if key not in known:
            errors.append(f"{name} is not an LMCache configuration key (LMCache ignores it)")
            continue
        exc = _run(functools.partial(_convert, known[key]["env_converter"], _parse_quoted_string(value)))
        if exc is not None:
            errors.append(f"{name}={value!r} is refused by LMCache's converter: {exc}")
    if not errors:
        errors += _load_lmcache(lmc, env)
    return errors


def _load_lmcache(lmc: Any, env: dict[str, str]) -> list[str]:
    saved = dict(os.environ)
    try:
        for name in [n for n in os.environ if n.startswith(LMCACHE_PREFIX)]:
            del os.environ[name]
        os.environ.update({k: v for k, v in env.items() if k.startswith(LMCACHE_PREFIX)})
        exc = _run(lambda: lmc.LMCacheEngineConfig.from_env().validate())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return [] if exc is None else [f"LMCacheEngineConfig.from_env(): {type(exc).__name__}: {exc}"]


def reported_values(parser: argparse.ArgumentParser, command: list[str]) -> dict[str, Any]:
    """The `REPORTED` engine arguments as vLLM's parser and `AsyncEngineArgs` read them (empty
    when the command does not parse)."""
    args, _ = _parse(parser, command[1:])
    if args is None:
        return {}
    from vllm.engine.arg_utils import AsyncEngineArgs

    engine_args = AsyncEngineArgs.from_cli_args(args)
    values: dict[str, Any] = {name: _plain(getattr(engine_args, name)) for name in REPORTED}
    values["access_log_silenced"] = silenced_paths(args)
    if engine_args.enable_lora:
        config = lora_config(engine_args)
        values["lora_config"] = {name: _plain(getattr(config, name))
                                 for name in ("max_loras", "max_cpu_loras", "max_lora_rank")}
        values["lora_modules"] = [_plain(m) for m in (getattr(args, "lora_modules", None) or [])]
    return values


def silenced_paths(args: argparse.Namespace) -> list[str]:
    """Which `ACCESS_PATHS` the server's access log drops: the uvicorn log config vLLM builds
    from these args (`get_uvicorn_log_config`, what `vllm serve` hands uvicorn), its filters
    applied to the access record uvicorn writes (`client, method, path, version, status`)."""
    import logging

    from vllm.entrypoints.launchers.utils.server_utils import get_uvicorn_log_config

    config = get_uvicorn_log_config(args) or {}
    filters = []
    for spec in (config.get("filters") or {}).values():
        kwargs = {k: v for k, v in spec.items() if k != "()"}
        filters.append(spec["()"](**kwargs))
    out = []
    for path in ACCESS_PATHS:
        record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 0, '%s - "%s %s HTTP/%s" %d',
                                   ("10.0.0.1:5000", "GET", path, "1.1", 200), None)
        if any(not f.filter(record) for f in filters):
            out.append(path)
    return out


def _plain(value: Any) -> Any:
    """A config dataclass (vLLM's `KVEventsConfig`) as a dict of its fields, for JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def check_case(parser: argparse.ArgumentParser, case: dict[str, Any]) -> dict[str, Any]:
    """One engine container's result."""
    env = dict(case.get("env") or {})
    command = list(case["command"])
    errors = check_vllm(parser, command)
    if any(k.startswith(LMCACHE_PREFIX) for k in env):
        errors += check_lmcache(env)
    values = reported_values(parser, command) if not errors else {}
    if values:
        values["compile_cache"] = compile_cache_path(env)
    return {"name": case["name"], "errors": errors, "values": values}


def compile_cache_path(env: dict[str, str]) -> str:
    """Where vLLM puts its `torch.compile` cache with the case's env: `VLLM_CACHE_ROOT` as
    `vllm.envs` reads it, joined as `vllm/compilation/backends.py` joins it."""
    import vllm.envs as vllm_envs

    saved = dict(os.environ)
    try:
        os.environ.update(env)
        return os.path.join(vllm_envs.VLLM_CACHE_ROOT, "torch_compile_cache")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    """Read cases from stdin, write results to stdout."""
    cases = json.load(sys.stdin)
    with contextlib.redirect_stdout(sys.stderr):  # library logging must not corrupt the JSON
        parser = _serve_parser()
        results = [check_case(parser, case) for case in cases]
    versions = {name: metadata.version(name) for name in ("vllm", "lmcache", "torch")}
    json.dump({"versions": versions, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
