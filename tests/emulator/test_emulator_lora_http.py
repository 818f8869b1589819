"""LoRA over real loopback: the emulator's load/unload/unknown-model answers against vLLM 0.33's own
serving code, `/v1/models` cards, `vllm:lora_requests_info` as the router reads it, per-adapter
prefix caches, slots and the CLI flags."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from cli import build_app
from emulator.config import EngineConfig
from emulator.lora import LoraModule, LoraSettings
from emulator.runner import run_emulators
from emulator.timing import Timing
from router.shell.engine_metrics import parse_lora_info
from stack_components.engine_check import engine_python

BASE = "test/base"
PROBE = Path(__file__).with_name("vllm_lora_probe.py")


def _config(tmp_path: Path, **lora: Any) -> EngineConfig:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir(exist_ok=True)
    settings = LoraSettings(**{"runtime_updating": True, "cpu_load_s": 0.0, "disk_load_s": 0.0, **lora})
    return EngineConfig(model=BASE, gpu_cache_tokens=50_000, timing=Timing(time_scale=0.01), lora=settings,
                        created=1)


def _serve(test, config: EngineConfig) -> None:
    async def main() -> None:
        async with run_emulators(config, 1) as cluster, aiohttp.ClientSession() as session:
            await test(cluster.urls[0], session)
    asyncio.run(asyncio.wait_for(main(), 30))


def _chat(model: str, content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 2, **extra}


async def _op(session: aiohttp.ClientSession, url: str, op: str, args: list[Any]) -> list[Any]:
    """One probe operation against the emulator, answered as `[status, body]`."""
    if op == "models":
        async with session.get(url + "/v1/models") as resp:
            return [resp.status, await resp.json()]
    if op == "model":
        async with session.post(url + "/v1/chat/completions", json=_chat(args[0])) as resp:
            return [resp.status, None if resp.status == 200 else await resp.json()]
    path = "/v1/load_lora_adapter" if op == "load" else "/v1/unload_lora_adapter"
    body = {"lora_name": args[0], "lora_path": args[1], "load_inplace": args[2]} if op == "load" \
        else {"lora_name": args[0]}
    async with session.post(url + path, json=body) as resp:
        return [resp.status, await resp.text() if resp.status == 200 else await resp.json()]


def _cards(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(c["id"], c["object"], c["owned_by"], c["root"], c["parent"], c["max_model_len"] is None)
            for c in body["data"]]


def test_lora_answers_match_vllm_serving_code(tmp_path: Path) -> None:
    """One sequence of loads, unloads, requests and listings: the emulator answers each with the
    status and body vLLM 0.33's `OpenAIServingModels` and `_check_model` give (cards compared
    without their times and permissions)."""
    python = engine_python()
    if python is None:
        pytest.fail("no .venv-engine: run `make install` (vLLM's serving code cannot be skipped)")
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    ops: list[list[Any]] = [
        ["model", ["sql"]], ["load", ["sql", a, False]], ["load", ["sql", a, False]],
        ["load", ["sql", b, True]], ["load", ["gone", "/missing/gone", False]], ["load", [BASE, a, False]],
        ["load", ["", a, False]], ["load", ["chat", b, False]], ["model", ["sql"]], ["model", ["chat"]],
        ["model", [BASE]], ["models", []],
        ["unload", ["nope"]], ["unload", [""]], ["unload", ["sql"]], ["model", ["sql"]], ["models", []],
    ]
    done = subprocess.run([str(python), str(PROBE)], input=json.dumps({"base": BASE, "ops": ops}),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = json.loads(done.stdout.strip().splitlines()[-1])
    got: list[list[Any]] = []

    async def test(url: str, session: aiohttp.ClientSession) -> None:
        got.extend([await _op(session, url, op, args) for op, args in ops])
    _serve(test, _config(tmp_path))
    assert len(got) == len(expected) == len(ops)
    for (op, args), mine, theirs in zip(ops, got, expected, strict=True):
        if op == "models":
            assert mine[0] == theirs[0] and _cards(mine[1]) == _cards(theirs[1]), (op, args)
        else:
            assert mine == theirs, (op, args)


def test_runtime_endpoints_are_absent_unless_enabled(tmp_path: Path) -> None:
    """Without VLLM_ALLOW_RUNTIME_LORA_UPDATING vLLM mounts no load route: FastAPI's 404."""
    async def test(url: str, session: aiohttp.ClientSession) -> None:
        body = {"lora_name": "x", "lora_path": "y"}
        async with session.post(url + "/v1/load_lora_adapter", json=body) as r:
            assert r.status == 404 and await r.json() == {"detail": "Not Found"}
        async with session.post(url + "/v1/load_lora_adapter", data=b"{}") as r:
            assert r.status == 404
    _serve(test, _config(tmp_path, runtime_updating=False))


def test_static_modules_are_served_with_parent(tmp_path: Path) -> None:
    """--lora-modules adapters are listed after the base model, `parent` the base, `root` the path."""
    modules = (LoraModule("a", str(tmp_path / "a")), LoraModule("b", str(tmp_path / "b")))

    async def test(url: str, session: aiohttp.ClientSession) -> None:
        async with session.get(url + "/v1/models") as resp:
            data = (await resp.json())["data"]
        assert [(c["id"], c["parent"], c["root"]) for c in data] == [
            (BASE, None, BASE), ("a", BASE, modules[0].path), ("b", BASE, modules[1].path)]
        async with session.post(url + "/v1/chat/completions", json=_chat("b")) as resp:
            assert resp.status == 200 and (await resp.json())["model"] == "b"
    _serve(test, _config(tmp_path, modules=modules))


async def _poll(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


def test_lora_info_gauge_reads_as_the_router_reads_vllm(tmp_path: Path) -> None:
    """While two adapters have requests on a one-slot engine, the newest series names both (under
    both labels, as vLLM 0.33) with max_lora 1; once they finish the newest names none, and the
    second adapter waited for the slot (loaded after the first's requests ended)."""
    modules = (LoraModule("a", str(tmp_path / "a")), LoraModule("b", str(tmp_path / "b")))

    async def test(url: str, session: aiohttp.ClientSession) -> None:
        seen: list[frozenset[str]] = []

        async def scrape() -> None:
            while True:
                async with session.get(url + "/metrics") as resp:
                    info = parse_lora_info(await resp.text())
                if info is not None:
                    assert info.max_loras == 1 and info.running == info.waiting
                    seen.append(info.running)
                await asyncio.sleep(0.005)
        scraper = asyncio.create_task(scrape())
        bodies = [_chat(m, max_tokens=40) for m in ("a", "a", "b")]
        answers = await asyncio.gather(*(session.post(url + "/v1/chat/completions", json=b) for b in bodies))
        assert [r.status for r in answers] == [200, 200, 200]

        async def settled() -> bool:
            return bool(seen) and seen[-1] == frozenset()
        await _poll(settled)
        scraper.cancel()
        assert frozenset({"a", "b"}) in seen
        async with session.get(url + "/emulator/stats") as resp:
            lora = (await resp.json())["lora"]
        assert lora["gpu"] == ["b"] and lora["open"] == {} and lora["gpu_evictions"] >= 1
    _serve(test, dataclasses.replace(_config(tmp_path, modules=modules), timing=Timing(time_scale=0.3)))


def test_an_adapter_has_its_own_prefix_cache(tmp_path: Path) -> None:
    """The same prompt cached under the base model misses under an adapter, then hits under it."""
    prompt = "shared history " * 400
    modules = (LoraModule("a", str(tmp_path / "a")),)

    async def test(url: str, session: aiohttp.ClientSession) -> None:
        hits = []
        for rid, model in enumerate((BASE, "a", "a", BASE)):
            headers = {"x-request-id": f"r{rid}"}
            body = _chat(model, prompt)
            async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as r:
                assert r.status == 200
            async with session.get(url + f"/emulator/requests?id=r{rid}") as r:
                hits.append((await r.json())["gpu_hit_tokens"])
        assert hits[0] == 0 and hits[1] == 0 and hits[2] > 1000 and hits[3] > 1000
    _serve(test, _config(tmp_path, modules=modules))


def test_lora_flags_reach_every_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`emulate --enable-lora ...` with the env var serves the modules and the load route; a bad
    value fails fast naming the flag."""
    (tmp_path / "a").mkdir()
    args = ["emulate", "--enable-lora", "--max-loras", "4", "--max-cpu-loras", "2"]
    bad = CliRunner().invoke(build_app(), args)
    assert bad.exit_code == 2 and "error: --max-cpu-loras:" in bad.output
    from emulator.serve import ServeArgs

    flags = {"engines": 2, "base_port": 0, "host": "127.0.0.1", "model": "m", "gpu_cache_tokens": 1000,
             "cpu_cache_tokens": 0, "max_num_seqs": 4, "max_num_batched_tokens": 64, "max_model_len": 500,
             "default_max_tokens": 5, "stop_after_tokens": 0, "time_scale": 0.5, "step_base_s": 0.01,
             "step_seq_s": 0.0, "prefill_token_s": 1e-4, "kv_read_token_s": 0.0, "cpu_load_tokens_per_s": 1e5,
             "fault": [], "seed": 0, "duration": 0.0, "ready_file": None, "shutdown_timeout_s": 0,
             "enable_lora": True, "max_loras": 2, "max_cpu_loras": 0, "max_lora_rank": 32,
             "lora_modules": [f"a={tmp_path / 'a'}"], "runtime_lora_updating": True,
             "lora_cpu_load_s": 0.01, "lora_disk_load_s": 0.2}
    configs = ServeArgs.from_flags(flags).configs
    assert len(configs) == 2 and all(c.lora == configs[0].lora for c in configs)
    lora = configs[0].lora
    assert lora is not None and (lora.max_loras, lora.cpu_slots, lora.max_lora_rank) == (2, 2, 32)
    assert lora.modules == (LoraModule("a", str(tmp_path / "a")),) and lora.runtime_updating
    assert (lora.cpu_load_s, lora.disk_load_s) == (0.01, 0.2)
    assert ServeArgs.from_flags({**flags, "enable_lora": False}).configs[0].lora is None

