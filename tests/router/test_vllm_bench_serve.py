"""`vllm bench serve` (vLLM 0.33.0, in .venv-engine) against the router in front of emulated
engines: every request completes with the token counts asked for, and the bench finds the routes
it probes (/tokenize, /detokenize: it re-aligns its prompts through them)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from emulator.config import EngineConfig, Timing
from emulator.runner import run_emulators
from router.settings import PolicySettings, RouterSettings, StaticEngine
from router.shell.app import create_app
from stack_components.engine_check import engine_python
from tests.router.harness import run, until

MODEL = "emu"
PROMPTS, INPUT_LEN, OUTPUT_LEN = 20, 32, 8
# A word-level tokenizer built on the spot (nothing can be downloaded from a hub here).
_MAKE_TOKENIZER = """
import sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast
vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(997)}}
tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tok.decoder = decoders.WordPiece()
PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="<s>",
                        eos_token="</s>").save_pretrained(sys.argv[1])
"""


async def _run(python: Path, *args: str) -> tuple[int, str]:
    env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", HF_HUB_OFFLINE="1")
    proc = await asyncio.create_subprocess_exec(str(python), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    return proc.returncode or 0, out.decode(errors="replace")


def test_vllm_bench_serve_completes_every_request_through_the_router(tmp_path: Path) -> None:
    """20 random prompts of 32 tokens, 8 tokens out each: 20 completed, 0 failed, 640 in and
    160 out as the bench counts them, and no warning that a route is missing."""
    python = engine_python()
    if python is None:
        pytest.fail("no .venv-engine: run `make install` (vLLM's bench cannot be skipped)")
    vllm = python.with_name("vllm")

    async def body() -> tuple[str, dict]:
        code, out = await _run(python, "-c", _MAKE_TOKENIZER, str(tmp_path / "tok"))
        assert code == 0, out[-2000:]
        config = EngineConfig(model=MODEL, timing=Timing(time_scale=0.01))
        async with run_emulators(config, engines=2) as cluster:
            engines = tuple(StaticEngine(url=u) for u in cluster.urls)
            settings = RouterSettings(engines=engines, models=(MODEL,), policy=PolicySettings(kind="prefix"),
                                      host="127.0.0.1")
            async with create_app(settings) as app:
                port = await app.serve("127.0.0.1", 0)
                await until(lambda: app.registry.healthy_count() == 2)
                code, out = await _run(
                    vllm, "bench", "serve", "--backend", "vllm", "--base-url", f"http://127.0.0.1:{port}",
                    "--model", MODEL, "--tokenizer", str(tmp_path / "tok"), "--dataset-name", "random",
                    "--random-input-len", str(INPUT_LEN), "--random-output-len", str(OUTPUT_LEN),
                    "--num-prompts", str(PROMPTS), "--ignore-eos", "--disable-tqdm", "--save-result",
                    "--result-dir", str(tmp_path / "result"))
        assert code == 0, out[-3000:]
        [result] = (tmp_path / "result").glob("*.json")
        return out, json.loads(result.read_text())

    out, result = run(body(), timeout=280)
    assert (result["completed"], result["failed"]) == (PROMPTS, 0), out[-3000:]
    assert (result["total_input_tokens"], result["total_output_tokens"]) == (PROMPTS * INPUT_LEN,
                                                                             PROMPTS * OUTPUT_LEN)
    assert "unavailable" not in out and "probe failed" not in out, out[-3000:]  # /tokenize found
    assert "re-aligning prompts" in out  # the server's tokenizer differs: the bench used /detokenize
