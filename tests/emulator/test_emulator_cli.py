"""`llm-stack emulate` flags and the synchronous runners (thread, process)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from typer.testing import CliRunner

import contracts
from cli import build_app
from emulator.config import EngineConfig
from emulator.errors import ConfigError, EmulatorError
from emulator.faults import Faults
from emulator.runner import EmulatorProcess, EmulatorThread, expand_configs
from emulator.serve import ServeArgs
from emulator.timing import Timing


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize(("args", "flag"), [
    (["--engines", "0"], "--engines"),
    (["--time-scale", "0"], "--time-scale"),
    (["--gpu-cache-tokens", "5"], "--gpu-cache-tokens"),
    (["--base-port", "65535", "--engines", "2"], "--base-port"),
    (["--fault", "7:dead"], "--fault"),
    (["--created", "-1"], "--created"),
    (["--kv-events", "--kv-events-wire", "yaml"], "--kv-events-wire"),
    (["--kv-events", "--kv-cpu-events", "disk"], "--kv-cpu-events"),
    (["--kv-events", "--kv-events-port", "65535"], "--kv-events-port"),
    (["--kv-events", "--kv-buffer-steps", "0"], "--kv-buffer-steps"),
])
def test_bad_flags_fail_fast_naming_the_flag(args, flag):
    """Invalid flags exit with status 2 and a message naming the flag and the value."""
    result = CliRunner().invoke(build_app(), ["emulate", *args])
    assert result.exit_code == 2
    assert f"error: {flag}:" in result.output and "got" in result.output


def test_flags_build_one_config_per_engine():
    """Timing knobs reach every engine; --fault lands on the named engine only."""
    flags = {"engines": 2, "base_port": 0, "host": "127.0.0.1", "model": "m", "gpu_cache_tokens": 1000,
             "cpu_cache_tokens": 0, "max_num_seqs": 4, "max_num_batched_tokens": 64, "max_model_len": 500,
             "default_max_tokens": 5, "stop_after_tokens": 0, "time_scale": 0.5, "step_base_s": 0.01,
             "step_seq_s": 0.0, "prefill_token_s": 1e-4, "kv_read_token_s": 0.0, "cpu_load_tokens_per_s": 1e5,
             "fault": ["1:status=503"], "seed": 0, "duration": 0.0, "ready_file": None,
                 "shutdown_timeout_s": 0}
    args = ServeArgs.from_flags(flags)
    assert [c.faults for c in args.configs] == [Faults(), Faults(status=503)]
    assert {c.timing.time_scale for c in args.configs} == {0.5}
    assert args.configs[0].stop_after_tokens is None


def test_kv_event_flags_give_each_engine_its_ports():
    """`--kv-events --kv-events-port P`: engine i publishes on P+2i and replays on P+2i+1, with the
    wire, CPU style, hash form and buffer asked; without `--kv-events` no engine publishes."""
    from emulator.kv_wire import CpuStyle, Wire

    flags = {"engines": 2, "base_port": 0, "host": "127.0.0.1", "model": "m", "gpu_cache_tokens": 1000,
             "cpu_cache_tokens": 0, "max_num_seqs": 4, "max_num_batched_tokens": 64, "max_model_len": 500,
             "default_max_tokens": 5, "stop_after_tokens": 0, "time_scale": 0.5, "step_base_s": 0.01,
             "step_seq_s": 0.0, "prefill_token_s": 1e-4, "kv_read_token_s": 0.0, "cpu_load_tokens_per_s": 1e5,
             "fault": [], "seed": 0, "duration": 0.0, "ready_file": None, "shutdown_timeout_s": 0}
    assert {c.kv_events for c in ServeArgs.from_flags(flags).configs} == {None}
    kv = ServeArgs.from_flags({**flags, "kv_events": True, "kv_events_port": 6000, "kv_events_wire": "array",
                               "kv_cpu_events": "lmcache", "kv_int_hashes": True, "kv_buffer_steps": 7})
    settings = [c.kv_events for c in kv.configs]
    assert [(s.endpoint, s.replay_endpoint) for s in settings] == [
        ("tcp://127.0.0.1:6000", "tcp://127.0.0.1:6001"), ("tcp://127.0.0.1:6002", "tcp://127.0.0.1:6003")]
    assert {(s.wire, s.cpu_style, s.int_hashes, s.buffer_steps) for s in settings} == {
        (Wire.ARRAY, CpuStyle.LMCACHE, True, 7)}


def test_created_flag_pins_every_answer_and_zero_means_the_clock():
    """`--created N` reaches each engine's config (tests compare streams byte for byte); 0: unpinned."""
    flags = {"engines": 1, "base_port": 0, "host": "127.0.0.1", "model": "m", "gpu_cache_tokens": 1000,
             "cpu_cache_tokens": 0, "max_num_seqs": 4, "max_num_batched_tokens": 64, "max_model_len": 500,
             "default_max_tokens": 5, "stop_after_tokens": 0, "time_scale": 0.5, "step_base_s": 0.01,
             "step_seq_s": 0.0, "prefill_token_s": 1e-4, "kv_read_token_s": 0.0, "cpu_load_tokens_per_s": 1e5,
             "fault": [], "seed": 0, "duration": 0.0, "ready_file": None, "shutdown_timeout_s": 0}
    assert ServeArgs.from_flags({**flags, "created": 1_700_000_000}).configs[0].created == 1_700_000_000
    assert ServeArgs.from_flags({**flags, "created": 0}).configs[0].created is None
    with EmulatorProcess(args=["--time-scale", "0.01", "--model", "p", "--created", "1234"]) as proc:
        body = json.dumps({"model": "p", "prompt": "x", "max_tokens": 2}).encode()
        request = urllib.request.Request(proc.urls[0] + contracts.PATH_COMPLETIONS, data=body,
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.loads(resp.read())["created"] == 1234


def test_config_list_must_match_engine_count():
    """A list of configs with a different engine count is a ConfigError."""
    with pytest.raises(ConfigError, match="engines"):
        expand_configs([EngineConfig(), EngineConfig()], 3)


def test_thread_runner_serves_and_applies_faults():
    """EmulatorThread serves engines from a sync caller and applies faults synchronously."""
    config = EngineConfig(model="m", timing=Timing(time_scale=0.01))
    with EmulatorThread(config, engines=2) as cluster:
        status, body = _get(cluster.urls[1] + contracts.PATH_MODELS)
        cluster.set_faults(0, Faults(status=503))
        faulty, _ = _get(cluster.urls[0] + contracts.PATH_HEALTH)
    assert status == 200 and json.loads(body)["data"][0]["id"] == "m" and faulty == 503


def test_process_runner_starts_the_cli_and_stops_it():
    """EmulatorProcess runs `python -m emulator.cli` on free ports and stops it on exit."""
    with EmulatorProcess(engines=2, args=["--time-scale", "0.01", "--model", "p"]) as proc:
        statuses = [_get(u + contracts.PATH_HEALTH)[0] for u in proc.urls]
    assert statuses == [200, 200] and proc.returncode is not None


def test_busy_port_is_a_clear_error():
    """Starting on a port already taken fails with the emulator's error naming host and port."""
    config = EngineConfig(model="m")
    with EmulatorThread(config) as cluster:
        port = int(cluster.urls[0].rsplit(":", 1)[1])
        with pytest.raises(EmulatorError, match=f"cannot listen on 127.0.0.1:{port}"):
            EmulatorThread(config, base_port=port).__enter__()
