"""The sampling fields of a chat or completion request, accepted and refused as vLLM 0.33 does
(pure), so the router's pass-through of engine errors is exercised against the emulator as it
would be against vLLM (issue 22, item 11).

vLLM reads a request with its pydantic models (`ChatCompletionRequest`, `CompletionRequest`,
vllm/entrypoints/openai/{chat_completion,completion}/protocol.py; pydantic's lax mode: an
integer field takes `4`, `4.0` and `"4"` but not `4.5`; a boolean takes `"true"` and `1`) and then
checks the values when it builds `SamplingParams` (`SamplingParams._verify_args`,
vllm/sampling_params.py): temperature in [0, 2], top_p in (0, 1], top_k 0, -1 or >= 1, min_p in
[0, 1], presence and frequency penalties in [-2, 2], repetition_penalty > 0, max_tokens >= 1,
0 <= min_tokens <= max_tokens, n >= 1, no empty stop string; `stream_options` only with
`stream`; chat `top_logprobs` only with `logprobs`; completion `logprobs` >= 0.

`tests/emulator/test_emulator_vllm_models.py` runs one corpus through vLLM's own models (in
`.venv-engine`) and through `check_sampling`, and requires the same verdict for each case.
Left out, because vLLM decides them with the model loaded: limits from `max_model_len` (checked
by `wire` against the emulator's context), the tokenizer's vocabulary (logprobs counts, token
ids), chat templates, and `min_tokens` against a default budget that depends on the prompt.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from emulator.errors import WireError
from router.routing.lax import as_bool


def _bad(name: str, value: Any, allowed: str) -> WireError:
    return WireError(400, f"{name} {allowed}, got {value!r}.", param=name)


def lax_int(body: Mapping[str, Any], name: str) -> int | None:
    """An integer field as pydantic's lax mode reads it; None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _bad(name, value, "must be a valid integer")


def lax_float(body: Mapping[str, Any], name: str) -> float | None:
    """A number field as pydantic's lax mode reads it; None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _bad(name, value, "must be a valid number")


def lax_bool(body: Mapping[str, Any], name: str, default: bool = False) -> bool:
    """A boolean field as pydantic's lax mode reads it."""
    value = body.get(name)
    if value is None:
        return default
    try:
        return as_bool(value)
    except ValueError:
        raise _bad(name, value, "must be a valid boolean") from None


def _in(name: str, value: float | None, low: float, high: float, *, open_low: bool = False) -> None:
    if value is None:
        return
    ok = math.isfinite(value) and (low < value if open_low else low <= value) and value <= high
    if not ok:
        interval = f"({low:g}, {high:g}]" if open_low else f"[{low:g}, {high:g}]"
        raise _bad(name, value, f"must be in {interval}")


def check_sampling(body: Mapping[str, Any], kind: str, default_max_tokens: int) -> None:
    """Refuse, as vLLM does, a request whose sampling fields it refuses (`WireError` 400 naming
    the field); `default_max_tokens` stands for the budget vLLM would give a request without one."""
    _check_values(body)
    _check_budget(body, kind, default_max_tokens)
    _check_stop(body.get("stop"))
    _check_flags(body, kind)


def _check_values(body: Mapping[str, Any]) -> None:
    _in("temperature", lax_float(body, "temperature"), 0, 2)
    _in("top_p", lax_float(body, "top_p"), 0, 1, open_low=True)
    _in("min_p", lax_float(body, "min_p"), 0, 1)
    for name in ("presence_penalty", "frequency_penalty"):
        _in(name, lax_float(body, name), -2, 2)
    repetition = lax_float(body, "repetition_penalty")
    if repetition is not None and not (math.isfinite(repetition) and repetition > 0):
        raise _bad("repetition_penalty", repetition, "must be a positive number")
    top_k = lax_int(body, "top_k")
    if top_k is not None and top_k < -1:
        raise _bad("top_k", top_k, "must be 0 (disable), or at least 1 (-1 also disables)")
    lax_int(body, "seed")
    n = lax_int(body, "n")
    if n is not None and n < 1:
        raise _bad("n", n, "must be at least 1")
    if n is not None and n > 1:
        raise WireError(400, "Only n=1 is supported by the emulator (vLLM generates n choices)", param="n")


def _check_budget(body: Mapping[str, Any], kind: str, default_max_tokens: int) -> None:
    budget = (lax_int(body, "max_completion_tokens") or lax_int(body, "max_tokens")) if kind == "chat" \
        else lax_int(body, "max_tokens")
    if budget is not None and budget < 1:
        raise _bad("max_tokens", budget, "must be at least 1")
    min_tokens = lax_int(body, "min_tokens")
    if min_tokens is not None and min_tokens < 0:
        raise _bad("min_tokens", min_tokens, "must be greater than or equal to 0")
    if min_tokens and min_tokens > (budget if budget is not None else default_max_tokens):
        raise _bad("min_tokens", min_tokens, "must be less than or equal to max_tokens")


def _check_flags(body: Mapping[str, Any], kind: str) -> None:
    stream = lax_bool(body, "stream")
    if body.get("stream_options") is not None and not stream:
        raise WireError(400, "Stream options can only be defined when `stream=True`.", param="stream_options")
    if kind == "chat":
        if body.get("top_logprobs") is not None and not lax_bool(body, "logprobs"):
            raise WireError(400, "when using `top_logprobs`, `logprobs` must be set to true.",
                            param="top_logprobs")
    else:
        logprobs = lax_int(body, "logprobs")
        if logprobs is not None and logprobs < 0:
            raise _bad("logprobs", logprobs, "must be non-negative")
    for name in ("echo", "ignore_eos", "logprobs" if kind == "chat" else "echo"):
        lax_bool(body, name)


def _check_stop(stop: Any) -> None:
    if stop is None:
        return
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad("stop", stop, "must be a string or a list of strings")
    if any(not s for s in stops):
        raise WireError(400, "stop cannot contain an empty string.", param="stop")
