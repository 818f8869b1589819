"""`llm-stack emulate` (or `python -m emulator.cli`): serve N emulated vLLM engines on loopback
ports until Ctrl-C. The command's body is `emulator.serve`.

    llm-stack emulate --engines 4 --base-port 8100 --model meta-llama/Llama-3.1-8B-Instruct \\
        --gpu-cache-tokens 400000 --cpu-cache-tokens 920000 --time-scale 0.1 --fault 3:dead

Timing knobs (`--step-base-s`, `--prefill-token-s`, ...) and engine limits default to
DESIGN.md's A100 / Llama-3.1-8B figures; `--fault ENGINE:NAME[=VALUE]` sets faults at start
(see `emulator.faults`). `--kv-events` makes every engine publish its KV events on ZMQ as vLLM
0.33 does (`emulator.kv_publisher`): engine i on `--kv-events-port` + 2i, its replay socket on
the next port (0: free ports; the ready file lists the endpoints). `--enable-lora` serves LoRA
adapters with vLLM's flags (`--max-loras`, `--max-cpu-loras`, `--max-lora-rank`, `--lora-modules
name=path`, repeatable) and its `VLLM_ALLOW_RUNTIME_LORA_UPDATING` environment variable for the
load/unload endpoints (`emulator.lora`). From Python use `emulator.runner`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from emulator.lora import CPU_LOAD_S, DISK_LOAD_S

_NOTE = "Defaults: DESIGN.md A100-80GB / Llama-3.1-8B."


_FLAGS = {"shutdown_timeout_s": "--shutdown-timeout", "cpu_load_s": "--lora-cpu-load-s",
          "disk_load_s": "--lora-disk-load-s", "modules": "--lora-modules"}


def _flag(field: str) -> str:
    return _FLAGS.get(field) or "--" + field.lstrip("-").replace("_", "-")


def emulate(
    engines: Annotated[int, typer.Option(help="Number of engines (ports base..base+N-1).")] = 1,
    base_port: Annotated[int, typer.Option(help="First port; 0 picks free ports.")] = 8100,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    model: Annotated[str, typer.Option(help="Served model name.")] = "meta-llama/Llama-3.1-8B-Instruct",
    gpu_cache_tokens: Annotated[int, typer.Option(help="GPU KV cache per engine, tokens.")] = 400_000,
    cpu_cache_tokens: Annotated[int, typer.Option(help="LMCache-like CPU tier per engine, tokens.")] = 0,
    max_num_seqs: Annotated[int, typer.Option(help="Largest running batch.")] = 256,
    max_num_batched_tokens: Annotated[int, typer.Option(help="Token budget per step.")] = 8192,
    max_model_len: Annotated[int, typer.Option(help="Context length.")] = 131_072,
    default_max_tokens: Annotated[int, typer.Option(help="Output tokens when a request sets none.")] = 256,
    stop_after_tokens: Annotated[
        int, typer.Option(help="EOS after N tokens (not with ignore_eos); 0: never.")
    ] = 0,
    time_scale: Annotated[float, typer.Option(help="Multiplies every duration (0.1: 10x faster).")] = 1.0,
    step_base_s: Annotated[float, typer.Option(help="Fixed cost of a step, s.")] = 0.012,
    step_seq_s: Annotated[float, typer.Option(help="Per sequence in a step, s.")] = 0.0001,
    prefill_token_s: Annotated[float, typer.Option(help="Per prefilled token, s.")] = 125e-6,
    kv_read_token_s: Annotated[float, typer.Option(help="Per context token read by a decode, s.")] = 6e-8,
    cpu_load_tokens_per_s: Annotated[float, typer.Option(help="CPU tier load bandwidth.")] = 200_000.0,
    fault: Annotated[list[str] | None, typer.Option(help="ENGINE:NAME[=VALUE], repeatable.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the fault draws.")] = 0,
    shutdown_timeout_s: Annotated[int, typer.Option(
        "--shutdown-timeout", help="On SIGTERM/SIGINT, as vLLM 0.33's flag: 0 aborts open requests at once; "
                                   "N > 0 refuses new ones and lets open ones run up to N s.")] = 0,
    created: Annotated[int, typer.Option(
        help="Pin the `created` field of every answer to this Unix second (two runs' streams then compare "
             "byte for byte); 0: the wall clock's second.")] = 0,
    kv_events: Annotated[bool, typer.Option(
        help="Publish KV events on ZMQ, as vLLM's --kv-events-config.")] = False,
    kv_events_port: Annotated[int, typer.Option(
        help="Engine i publishes on PORT+2i and replays on PORT+2i+1 (on --host); 0: free ports.")] = 0,
    kv_events_wire: Annotated[str, typer.Option(
        help="Event encoding: map (tagged maps, vLLM 0.33) or array (positional, older vLLM).")] = "map",
    kv_cpu_events: Annotated[str, typer.Option(
        help="CPU tier events: vllm (medium CPU, with removals) or lmcache (medium cpu, stores only)."
    )] = "vllm",
    kv_int_hashes: Annotated[bool, typer.Option(
        help="Block hashes as 64-bit ints (vLLM's VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES).")] = False,
    kv_buffer_steps: Annotated[int, typer.Option(
        help="Batches kept for replay (vLLM's buffer_steps).")] = 10_000,
    enable_lora: Annotated[bool, typer.Option(help="Serve LoRA adapters, as vLLM's --enable-lora.")] = False,
    max_loras: Annotated[int, typer.Option(help="GPU adapter slots: adapters in one batch.")] = 1,
    max_cpu_loras: Annotated[int, typer.Option(help="Adapters kept in CPU memory; 0: --max-loras.")] = 0,
    max_lora_rank: Annotated[int, typer.Option(help="Largest adapter rank accepted.")] = 16,
    lora_modules: Annotated[list[str] | None, typer.Option(
        help="NAME=PATH or a JSON {name, path, base_model_name}, repeatable: served from the start.")] = None,
    lora_cpu_load_s: Annotated[float, typer.Option(help="Adapter CPU -> GPU slot copy, s.")] = CPU_LOAD_S,
    lora_disk_load_s: Annotated[float, typer.Option(help="An adapter's read from disk, s.")] = DISK_LOAD_S,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds; 0: until Ctrl-C.")] = 0.0,
    ready_file: Annotated[str | None, typer.Option(help="Write {\"urls\": [...]} here once serving.")] = None,
) -> None:
    """Serve emulated vLLM engines (OpenAI API, /metrics, prefix cache, batching, faults)."""
    flags = dict(locals())
    import os

    flags["runtime_lora_updating"] = (  # read as vLLM's envs.py does
        os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "0").strip().lower() in ("1", "true"))
    from emulator.errors import ConfigError, EmulatorError
    from emulator.serve import ServeArgs, serve

    try:
        args = ServeArgs.from_flags(flags)
    except ConfigError as exc:
        typer.echo(f"error: {_flag(exc.field_name.split('.')[0])}: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        serve(args, typer.echo)
    except EmulatorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    """Add `emulate` to the root app."""
    app.command("emulate", help="Serve emulated vLLM engines on loopback ports. " + _NOTE)(emulate)


if __name__ == "__main__":  # `python -m emulator.cli ...`: the command alone (what `EmulatorProcess` runs)
    typer.run(emulate)
