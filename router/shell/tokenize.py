"""A request's prompt as token ids, from one of its engines' `POST /tokenize` (scoring by events).

Why the engine tokenises: the engines' KV events name each cached block by its token ids
(`BlockStored.token_ids`, vLLM 0.33 `vllm/distributed/kv_events.py`), and the router keys blocks
by those ids (`router.routing.kv.keys`). To look a new request up, the router needs the exact ids
the engine will prefill, and those come from the engine's own tokenizer *and* its chat template
(with the request's `add_generation_prompt`, `continue_final_message`, `tools`,
`chat_template_kwargs`, ... and the server's `--chat-template`). vLLM's `/tokenize` runs the very
renderer its chat and completion routes run (`ServingTokenization.create_tokenize`,
vllm/entrypoints/serve/tokenize/serving.py: `preprocess_chat` / `preprocess_completion`, Harmony
for GPT-OSS), so its ids are the prefill's ids and the keys are exact. The alternatives:

- a tokenizer in the router (the model's `tokenizer.json` and chat template): a second copy of
  what the engine does, to keep in step with the engine image (template fixes, Harmony, tool
  rendering, the `--chat-template` flag, per-adapter tokenizers); any drift silently turns
  every prediction into a miss, and loading a tokenizer per served model costs the router
  hundreds of MB and seconds at start;
- an engine-key -> request-key bridge (llm-d's: learn, per served request, which engine hashes
  it produced): it knows only prompts this replica has routed before, so it cannot score the
  first turn, traffic another replica sent, or a replica that just joined, the cases events are
  for.

The price is one loopback-latency call per request (the ids are the prompt's; the engine's API
server tokenises in its own process, not on the GPU), bounded by `kv_events.tokenize_timeout_s`:
a request whose ids do not come in time is scored by the router's own estimate
(`ROUTER_KV_TOKENIZE{outcome}`, and `no_tokens` in `ROUTER_KV_FALLBACKS`). A completion whose
prompt already is token ids needs no call (`given`).

`tokenize_body` and `token_ids_of` are pure; `Tokenizer` does the I/O on the router's upstream pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from contracts import PATH_CHAT, PATH_COMPLETIONS
from router.routing.base import EngineState
from router.shell.errors import UpstreamError
from router.shell.upstream import Upstream

PATH_TOKENIZE: Final = "/tokenize"
OUTCOME_OK: Final = "ok"
OUTCOME_GIVEN: Final = "given"
OUTCOME_TIMEOUT: Final = "timeout"
OUTCOME_ERROR: Final = "error"
OUTCOME_UNSUPPORTED: Final = "unsupported"
OUTCOME_NO_ENGINE: Final = "no_engine"
OUTCOMES: Final = (OUTCOME_OK, OUTCOME_GIVEN, OUTCOME_TIMEOUT, OUTCOME_ERROR, OUTCOME_UNSUPPORTED,
                   OUTCOME_NO_ENGINE)
"""The `outcome` label of `ROUTER_KV_TOKENIZE`: ids from the engine, ids in the request itself,
no answer in time, a failed answer, a request `/tokenize` cannot take (a batch of prompts, an
embedding, a path other than chat and completions), no engine of the model to ask (the request
is held, or refused)."""

# The chat fields that change what vLLM renders (`TokenizeChatRequest`, which takes them all and,
# like every vLLM request model, ignores fields it does not know: `OpenAIBaseModel` extra="allow").
CHAT_FIELDS: Final = ("messages", "tools", "add_generation_prompt", "continue_final_message",
                      "add_special_tokens", "chat_template", "chat_template_kwargs",
                      "mm_processor_kwargs")
COMPLETION_FIELDS: Final = ("prompt", "add_special_tokens")


def tokenize_body(payload: Mapping[str, Any], path: str, model: str) -> bytes | None:
    """The `/tokenize` body that renders `payload` (a request to `path`) as the engine will
    prefill it; None when `/tokenize` cannot (not a chat or completion, a batch of prompts)."""
    fields: tuple[str, ...]
    if path == PATH_CHAT:
        fields = CHAT_FIELDS
    elif path == PATH_COMPLETIONS and isinstance(payload.get("prompt"), str):
        fields = COMPLETION_FIELDS
    else:
        return None
    body: dict[str, Any] = {"model": model}
    body.update((name, payload[name]) for name in fields if name in payload)
    return orjson.dumps(body)


def given_ids(payload: Mapping[str, Any], path: str) -> tuple[int, ...] | None:
    """The ids of a completion whose prompt is one list of token ids (vLLM takes it as is)."""
    prompt = payload.get("prompt") if path == PATH_COMPLETIONS else None
    if isinstance(prompt, list) and prompt and all(type(t) is int for t in prompt):
        return tuple(prompt)
    return None


def token_ids_of(raw: bytes) -> tuple[int, ...] | None:
    """The `tokens` of a `/tokenize` answer (`TokenizeResponse`); None when it has none."""
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    tokens = answer.get("tokens") if isinstance(answer, dict) else None
    if not isinstance(tokens, list) or not all(type(t) is int for t in tokens):
        return None
    return tuple(tokens)


def tokenizing_engine(engines: Sequence[EngineState]) -> EngineState | None:
    """The engine to ask: the least busy candidate (ties to the first)."""
    return min(engines, key=lambda e: e.in_flight + e.waiting, default=None)


class Tokenizer:
    """Token ids from an engine's `/tokenize` within `timeout_s`."""

    def __init__(self, upstream: Upstream, timeout_s: float) -> None:
        self.upstream = upstream
        self.timeout_s = timeout_s

    async def token_ids(self, payload: Mapping[str, Any], path: str, model: str,
                        engines: Sequence[EngineState]) -> tuple[tuple[int, ...] | None, str]:
        """The prompt's ids and the outcome (`OUTCOMES`); ids None unless `ok` or `given`."""
        given = given_ids(payload, path)
        if given is not None:
            return given, OUTCOME_GIVEN
        body = tokenize_body(payload, path, model)
        if body is None:
            return None, OUTCOME_UNSUPPORTED
        engine = tokenizing_engine(engines)
        if engine is None:
            return None, OUTCOME_NO_ENGINE
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._ask(engine.id, body)
        except TimeoutError:
            return None, OUTCOME_TIMEOUT
        except UpstreamError:
            return None, OUTCOME_ERROR

    async def _ask(self, engine: str, body: bytes) -> tuple[tuple[int, ...] | None, str]:
        resp = await self.upstream.request(engine, "POST", PATH_TOKENIZE, body,
                                           headers={"content-type": "application/json"})
        try:
            raw = await resp.read()
        finally:
            resp.release()
        ids = token_ids_of(raw) if resp.status == 200 else None
        return ids, OUTCOME_OK if ids is not None else OUTCOME_ERROR
