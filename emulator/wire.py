"""vLLM's OpenAI-compatible wire format: request parsing and response bytes. Pure.

Parsing turns a raw body into a `ParsedRequest` or raises `WireError` (400 bad JSON or
fields, 404 unknown model, 400 over the context length), with vLLM-like messages. Encoders
build the exact SSE chunks vLLM sends: chat streams open with a `delta.role` chunk, then one
chunk per token (the last one carries `finish_reason`), then a usage chunk (`choices: []`)
when `stream_options.include_usage`, then `data: [DONE]`. A request the engine aborts (vLLM
0.33's shutdown with `--shutdown-timeout 0`, or new work while it drains) ends with a chunk whose
`finish_reason` is `"abort"`, as vLLM's `FinishReason.ABORT` reaches the client
(vllm/v1/engine/__init__.py, output_processor.py). What is generated is `emulator.generation`'s:
a function of the context and the position, 4 bytes per token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import xxhash

from contracts import SSE_DONE
from emulator.config import EngineConfig
from emulator.errors import WireError
from emulator.generation import generation_context
from emulator.lora import Adapter, AdapterRegistry
from emulator.validation import check_sampling, lax_bool, lax_float, lax_int
from router.routing.migration import COMPLETIONS_DEFAULT_MAX_TOKENS
from router.routing.prompt import count_tokens

Kind = Literal["chat", "completion"]
FINISH_ABORT = "abort"
_MARK = "\u0000TOKEN\u0000"
_OBJECT = {"chat": "chat.completion", "completion": "text_completion"}
_CHUNK_OBJECT = {"chat": "chat.completion.chunk", "completion": "text_completion"}
_ID_PREFIX = {"chat": "chatcmpl-", "completion": "cmpl-"}


@dataclass(frozen=True, kw_only=True)
class ParsedRequest:
    """One generation request, validated."""

    kind: Kind
    model: str
    prompt: str  # the text the model continues (`generation.generation_context`)
    prompt_tokens: int
    max_tokens: int
    stream: bool
    include_usage: bool
    ignore_eos: bool
    salt: int | None = 0  # sampling salt (`emulator.generation`); None: draw one per request
    adapter: Adapter | None = None  # the LoRA adapter `model` names (None: the base model)


def request_id(kind: Kind, base: str) -> str:
    """vLLM's response id: a kind prefix and the client's `x-request-id` (or a random id)."""
    return _ID_PREFIX[kind] + base


def error_body(status: int, message: str, error_type: str, param: str | None = None) -> bytes:
    """vLLM's error JSON."""
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": param, "code": status}})


def _load_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireError(400, f"JSON decode error: {exc}") from None
    if not isinstance(body, dict):
        raise WireError(400, "Request body must be a JSON object")
    return body


def _check_model(body: Mapping[str, Any], config: EngineConfig,
                 adapters: AdapterRegistry | None) -> tuple[str, Adapter | None]:
    """The served name a request asks for, and its adapter; vLLM 0.33's 404 otherwise
    (`BaseServing._check_model`, vllm/entrypoints/serve/engine/serving.py)."""
    model = body.get("model", config.model)
    if not model:
        return config.model, None
    if adapters is not None and isinstance(model, str):
        return model, adapters.resolve(model)
    if model != config.model:
        raise WireError(404, f"The model `{model}` does not exist. Valid aliases: {config.model}.",
                        "NotFoundError", "model")
    return model, None


def _check_prompt_field(body: Mapping[str, Any], kind: Kind) -> None:
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise WireError(400, "Field required: messages (a non-empty list)", param="messages")
        if not all(isinstance(m, dict) and "role" in m for m in messages):
            raise WireError(400, "Every message must be an object with a role", param="messages")
    elif not isinstance(body.get("prompt"), str | list):
        raise WireError(400, "Field required: prompt (a string or a list of strings)", param="prompt")
    if kind == "chat" and body.get("continue_final_message") and body.get("add_generation_prompt"):
        raise WireError(400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True.")


def _salt(body: Mapping[str, Any]) -> int | None:
    """0 (greedy) unless the request samples: then its seed, or None (a random salt)."""
    temperature = lax_float(body, "temperature")
    if temperature is None or temperature <= 0:
        return 0
    return lax_int(body, "seed")


# A completion without `max_tokens` gets vLLM's `CompletionRequest` default
# (`COMPLETIONS_DEFAULT_MAX_TOKENS`, the one the router's migration budgets with); a chat request
# without a budget gets the rest of the context in vLLM, `EngineConfig.default_max_tokens` here.


def _max_tokens(body: Mapping[str, Any], prompt_tokens: int, config: EngineConfig, kind: Kind) -> int:
    limit = config.context_limit
    if prompt_tokens >= limit:
        raise WireError(400, f"This model's maximum context length is {limit} tokens. However, your "
                             f"request has {prompt_tokens} input tokens. Please reduce the length of "
                             "the input.", param="messages")
    if kind == "chat":
        asked = lax_int(body, "max_completion_tokens") or lax_int(body, "max_tokens")
    else:
        asked = lax_int(body, "max_tokens")
        asked = COMPLETIONS_DEFAULT_MAX_TOKENS if asked is None and "max_tokens" not in body else asked
    if asked is None:
        return min(config.default_max_tokens, limit - prompt_tokens)
    if prompt_tokens + asked > limit:
        raise WireError(400, f"This model's maximum context length is {limit} tokens. However, you "
                             f"requested {prompt_tokens + asked} tokens ({prompt_tokens} in the input, "
                             f"{asked} in the completion).", param="max_tokens")
    return asked


def parse_generation(raw: bytes, kind: Kind, config: EngineConfig,
                     adapters: AdapterRegistry | None = None) -> ParsedRequest:
    """A chat or completion request body, validated like vLLM's server does (`adapters`: the
    LoRA adapters served, None without `--enable-lora`)."""
    body = _load_object(raw)
    _check_prompt_field(body, kind)
    model, adapter = _check_model(body, config, adapters)
    default_budget = config.default_max_tokens if kind == "chat" else COMPLETIONS_DEFAULT_MAX_TOKENS
    check_sampling(body, kind, default_budget)
    text = generation_context(body)
    tokens = max(1, count_tokens(text))
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    return ParsedRequest(kind=kind, model=model, prompt=text, prompt_tokens=tokens,
                         max_tokens=_max_tokens(body, tokens, config, kind), stream=lax_bool(body, "stream"),
                         include_usage=include_usage, ignore_eos=lax_bool(body, "ignore_eos"),
                         salt=_salt(body), adapter=adapter)


def parse_embedding(raw: bytes, config: EngineConfig,
                    adapters: AdapterRegistry | None = None) -> tuple[str, list[str]]:
    """(model, inputs) of an embeddings request."""
    body = _load_object(raw)
    model, _ = _check_model(body, config, adapters)
    inputs = body.get("input")
    if isinstance(inputs, str):
        return model, [inputs]
    if isinstance(inputs, list) and inputs and all(isinstance(i, str) for i in inputs):
        return model, inputs
    raise WireError(400, "Field required: input (a string or a non-empty list of strings)", param="input")


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI usage object."""
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens}


def _choice(kind: Kind, text: str, finish_reason: str | None, *, first: bool = False) -> dict[str, Any]:
    if kind == "completion":
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason,
                "stop_reason": None}
    delta = {"role": "assistant", "content": text} if first else {"content": text}
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


class StreamEncoder:
    """SSE chunks of one streamed response; token chunks come from a precomputed template."""

    def __init__(self, kind: Kind, rid: str, created: int, model: str) -> None:
        self.kind = kind
        self._head = {"id": rid, "object": _CHUNK_OBJECT[kind], "created": created, "model": model}
        template = self._event(_choice(kind, _MARK, None))
        self._prefix, self._suffix = template.split(_MARK.encode().replace(b"\x00", b"\\u0000"))

    def _event(self, choice: dict[str, Any] | None, **extra: Any) -> bytes:
        payload = {**self._head, "choices": [choice] if choice else [], **extra}
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def role(self) -> bytes:
        """The opening chunk of a chat stream (empty for completions)."""
        return self._event(_choice("chat", "", None, first=True)) if self.kind == "chat" else b""

    def tokens(self, words: list[str], finish_reason: str | None) -> bytes:
        """One chunk per token of `words`; the last carries `finish_reason` if set (a finish with
        no token left, as an abort: one chunk with empty content)."""
        if finish_reason and not words:
            return self._event(_choice(self.kind, "", finish_reason))
        plain = words[:-1] if finish_reason else words
        prefix, suffix = self._prefix, self._suffix
        out = b"".join(prefix + word.encode() + suffix for word in plain)
        if finish_reason:
            out += self._event(_choice(self.kind, words[-1], finish_reason))
        return out

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The usage chunk (`choices: []`)."""
        return self._event(None, usage=usage(prompt_tokens, completion_tokens))

    def error(self, status: int, message: str, error_type: str) -> bytes:
        """An error event inside a stream, as vLLM sends when generation fails."""
        return b"data: " + error_body(status, message, error_type) + b"\n\n"

    @staticmethod
    def done() -> bytes:
        """The stream terminator."""
        return SSE_DONE


def completion_body(parsed: ParsedRequest, rid: str, created: int, text: str, tokens: int,
                    finish_reason: str) -> bytes:
    """A non-streamed chat completion or text completion of `tokens` tokens spelling `text`."""
    if parsed.kind == "chat":
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                  "logprobs": None, "finish_reason": finish_reason, "stop_reason": None}
    else:
        choice = _choice("completion", text, finish_reason)
    return orjson.dumps({"id": rid, "object": _OBJECT[parsed.kind], "created": created,
                         "model": parsed.model, "choices": [choice],
                         "usage": usage(parsed.prompt_tokens, tokens)})


def models_body(model: str, created: int, max_model_len: int,
                adapters: AdapterRegistry | None = None) -> bytes:
    """`GET /v1/models`: the base model, then each LoRA adapter with its `parent`."""
    card = {"id": model, "object": "model", "created": created, "owned_by": "vllm", "root": model,
            "parent": None, "max_model_len": max_model_len}
    lora = adapters.cards(created) if adapters is not None else []
    return orjson.dumps({"object": "list", "data": [card, *lora]})


def embedding_vector(text: str, dim: int) -> list[float]:
    """A deterministic unit-free vector for `text` (equal texts, equal vectors)."""
    seed = xxhash.xxh3_64_intdigest(text.encode())
    return [((seed >> (i % 64)) & 0xFF) / 255.0 - 0.5 for i in range(dim)]


def embeddings_body(model: str, rid: str, created: int, inputs: list[str], dim: int) -> bytes:
    """`POST /v1/embeddings` answer."""
    data = [{"index": i, "object": "embedding", "embedding": embedding_vector(t, dim)}
            for i, t in enumerate(inputs)]
    tokens = sum(max(1, count_tokens(t)) for t in inputs)
    return orjson.dumps({"id": rid, "object": "list", "created": created, "model": model, "data": data,
                         "usage": usage(tokens, 0)})
