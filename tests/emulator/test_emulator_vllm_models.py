"""vLLM checks the emulator: one corpus of request bodies, valid and invalid, goes through vLLM
0.33's own request models and `SamplingParams` checks (in `.venv-engine`, like the engine check)
and through the emulator's parser; both must give the same verdict for every body — the status
(200 or 400) and, where vLLM names one, the field at fault (issue 22, item 11).

Left out of the corpus, with the reason: `n` > 1 (vLLM generates several choices; the emulator
one, and refuses the rest with a 400 naming itself), and anything vLLM decides with the model
loaded (context length, tokenizer, chat template).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from emulator.config import EngineConfig
from emulator.errors import WireError
from emulator.wire import parse_generation
from stack_components.engine_check import engine_python

PROBE = Path(__file__).with_name("vllm_request_probe.py")
MESSAGES = [{"role": "user", "content": "hi"}]
VALUES: dict[str, list[Any]] = {
    "temperature": [0, 0.7, 2, 2.5, -1, "0.5", True, None, "x", "nan"],
    "top_p": [1, 0.5, 0, 1.5, "1", None, -0.1],
    "top_k": [0, -1, 5, -2, 2.0, 2.5, "3", None, "x"],
    "min_p": [0, 1, 1.5, -0.1, "0.2"],
    "presence_penalty": [2, -2, 2.1, "1", -2.01],
    "frequency_penalty": [0, -2.5, 1.9],
    "repetition_penalty": [1, 0, -1, 0.5, 3],
    "seed": [1, -5, "3", 1.0, 1.5, "x", True, None],
    "max_tokens": [1, 0, -1, "10", 4.0, 4.5, True, "x", None],
    "min_tokens": [0, 3, -1, 40, 60, "2"],
    "n": [1, 0, "1", -1],
    "stop": ["x", ["a", "b"], [], [""], "", 5, [1], None],
    "stream": [True, False, "true", "no", 1, 0, None, "maybe", 2],
    "ignore_eos": [True, "no", "x"],
}
PAIRS: list[dict[str, Any]] = [
    {"stream_options": {"include_usage": True}},
    {"stream": True, "stream_options": {"include_usage": True}},
    {"stream": "yes", "stream_options": {"include_usage": True}},
    {"min_tokens": 5, "max_tokens": 2},
    {"min_tokens": 2, "max_tokens": 5},
]
CHAT_ONLY: list[dict[str, Any]] = [
    {"logprobs": True, "top_logprobs": 2}, {"top_logprobs": 2}, {"logprobs": False, "top_logprobs": 1},
    {"max_completion_tokens": 0}, {"max_completion_tokens": 3, "min_tokens": 4},
    {"max_completion_tokens": "7"},
]
COMPLETION_ONLY: list[dict[str, Any]] = [{"logprobs": 3}, {"logprobs": -2}, {"logprobs": 0}, {"echo": "yes"}]


def corpus() -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = []
    for kind in ("chat", "completion"):
        base: dict[str, Any] = {"model": "m", "messages": MESSAGES} if kind == "chat" else {"model": "m",
                                                                                          "prompt": "x"}
        extra = CHAT_ONLY if kind == "chat" else COMPLETION_ONLY
        cases += [(kind, {**base, name: value}) for name, values in VALUES.items() for value in values]
        cases += [(kind, {**base, **fields}) for fields in PAIRS + extra]
    return cases


def emulator_verdict(kind: str, body: dict[str, Any]) -> tuple[int, str | None]:
    config = EngineConfig(model="m")
    try:
        parse_generation(orjson.dumps(body), kind, config)  # type: ignore[arg-type]
    except WireError as exc:
        return exc.status, exc.param
    return 200, None


def test_the_emulator_accepts_exactly_what_vllm_accepts() -> None:
    python = engine_python()
    if python is None:
        pytest.fail("no .venv-engine: run `make install` (vLLM's request models cannot be skipped)")
    cases = corpus()
    done = subprocess.run([str(python), str(PROBE)], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=300, check=True)
    vllm = [tuple(v) for v in json.loads(done.stdout.strip().splitlines()[-1])]
    assert len(vllm) == len(cases)
    differ = []
    for (kind, body), (status, param) in zip(cases, vllm, strict=True):
        ours = emulator_verdict(kind, body)
        if ours[0] != status or (param is not None and ours[1] != param):
            fields = {k: v for k, v in body.items() if k not in ("model", "messages", "prompt")}
            differ.append(f"{kind} {fields}: vLLM {status} {param}, emulator {ours[0]} {ours[1]}")
    assert not differ, "\n".join(differ)
    assert sum(1 for status, _ in vllm if status == 400) >= 40  # the corpus has teeth
