"""Mid-stream migration, the pure part: what a broken stream had sent, whether and how the
request continues on another engine, and how the continuation's events are spliced onto it.

When an engine fails after the client has received part of a stream (connection reset, the
engine killed, a stall past the inter-chunk deadline), the router re-sends the request to
another engine with the text already streamed appended to the context, so the model continues
where it stopped, and relays the rest of the new stream as if it were the old one — the
technique NVIDIA Dynamo documents as request migration (`--migration-limit`). At temperature 0
the continuation generates exactly the tokens the first engine would have, up to the
re-tokenisation of the streamed text (Dynamo re-sends token ids; the OpenAI API only takes
text), so on the emulator (which tokenises exactly) a migrated stream is byte-identical to an
uninterrupted one (tests/router/shell/test_migration.py).

How the continuation is asked for, per vLLM 0.33.0's request models
(vllm/entrypoints/openai/{chat_completion,completion}/protocol.py):
- chat: the streamed text becomes a final assistant message, with `continue_final_message:
  true` and `add_generation_prompt: false` (vLLM refuses both true), so the chat template
  leaves that message open and the model continues it; a request that already ended in an
  assistant message with `continue_final_message` has the text appended to it.
- completions: the streamed text is appended to the (one, string) prompt.
- the token budget (`max_completion_tokens`, else `max_tokens`; for completions vLLM's
  default 16) and `min_tokens` lose the tokens already streamed. Tokens are counted as the
  events that carried text: vLLM streams one event per engine step and token
  (`--stream-interval` defaults to 1, vllm/config/scheduler.py), except where the detokenizer
  holds back an incomplete UTF-8 character, so the count is never above the true one.

Not migrated (one clean error event instead, then `data: [DONE]`), because a continuation
could not reproduce them: several choices (`n`, `best_of`), logprobs, tools, structured output,
echo and token ids, reasoning content, a prompt that is not one string (token ids, a batch),
and a budget already used up.

The splice: the continuation's opening chat event (`delta.role` with empty content) is dropped
(the client had one), every event's `id` and `created` are replaced by the first engine's (a
real vLLM stamps its own `created` and, without an `x-request-id`, its own id), and a usage
event (`stream_options.include_usage`) is restated for the whole answer: the continuation's
prompt counted the streamed tokens, which are the answer's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

DONE: Final = b"data: [DONE]\n\n"
_DATA: Final = b"data: "
_SEP: Final = b"\n\n"
COMPLETIONS_DEFAULT_MAX_TOKENS: Final = 16
"""vLLM's `CompletionRequest.max_tokens` default (completion/protocol.py)."""


@dataclass(slots=True)
class Streamed:
    """What the client has received of a stream, read back from its events."""

    text: str = ""
    tokens: int = 0  # events that carried text
    id: str | None = None
    created: int | None = None
    finished: bool = False  # an event carried a finish_reason
    done: bool = False  # `data: [DONE]` was sent
    error: bool = False  # an error event was sent
    usage: bool = False  # a usage event was sent
    unsupported: str | None = None  # something a continuation cannot reproduce


def read_events(data: bytes) -> list[bytes]:
    """The payloads of the complete `data:` events in `data` (what follows `data: `)."""
    out = []
    for event in data.split(_SEP):
        for line in event.split(b"\n"):
            if line.startswith(_DATA):
                out.append(line[len(_DATA):])
            elif line.startswith(b"data:"):
                out.append(line[5:])
    return out


def read_stream(data: bytes, chat: bool) -> Streamed:
    """What `data` (the complete events sent to the client so far) carried."""
    seen = Streamed()
    for payload in read_events(data):
        if payload.strip() == b"[DONE]":
            seen.done = True
            continue
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            seen.unsupported = "an event that is not JSON"
            continue
        if not isinstance(event, dict):
            continue
        if "error" in event:
            seen.error = True
            continue
        if seen.id is None and isinstance(event.get("id"), str):
            seen.id = event["id"]
            created = event.get("created")
            seen.created = created if isinstance(created, int) else None
        if event.get("usage") and not event.get("choices"):
            seen.usage = True
        for choice in event.get("choices") or ():
            _read_choice(seen, choice, chat)
    return seen


def _read_choice(seen: Streamed, choice: Any, chat: bool) -> None:
    if not isinstance(choice, dict):
        return
    if choice.get("index", 0) != 0:
        seen.unsupported = "several choices"
    if choice.get("logprobs"):
        seen.unsupported = "logprobs"
    if chat:
        delta = choice.get("delta") or {}
        if delta.get("reasoning_content") or delta.get("reasoning"):
            seen.unsupported = "reasoning content"
        if delta.get("tool_calls"):
            seen.unsupported = "tool calls"
        text = delta.get("content")
    else:
        text = choice.get("text")
    if isinstance(text, str) and text:
        seen.text += text
        seen.tokens += 1
    if choice.get("finish_reason") is not None:
        seen.finished = True


def unmigratable(payload: Mapping[str, Any], chat: bool) -> str | None:
    """Why a request's stream could not be continued on another engine; None when it can."""
    if payload.get("n") not in (None, 1) or payload.get("best_of") not in (None, 1):
        return "several choices (n / best_of)"
    if payload.get("logprobs") or payload.get("top_logprobs") or payload.get("prompt_logprobs"):
        return "logprobs"
    if payload.get("echo") or payload.get("return_token_ids"):
        return "echo / return_token_ids"
    fmt = payload.get("response_format")
    if (fmt not in (None, {"type": "text"}) or payload.get("structured_outputs")
            or any(k in payload for k in ("guided_json", "guided_regex", "guided_choice", "guided_grammar"))):
        return "structured output"
    if chat:
        if payload.get("tools") and payload.get("tool_choice") != "none":
            return "tools"
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            return "no messages"
        last = messages[-1]
        if (payload.get("continue_final_message") and isinstance(last, dict)
                and not isinstance(last.get("content"), str)):
            return "a final message whose content is not one string"
    elif not isinstance(payload.get("prompt"), str):
        return "a prompt that is not one string"
    return None


def _budget_key(payload: Mapping[str, Any], chat: bool) -> str | None:
    if chat:
        if payload.get("max_completion_tokens") is not None:
            return "max_completion_tokens"
        return "max_tokens" if payload.get("max_tokens") is not None else None
    return "max_tokens"


def continuation(payload: Mapping[str, Any], chat: bool, seen: Streamed) -> dict[str, Any] | str:
    """The request that continues `payload` after what `seen` holds; a reason string when it
    cannot be continued."""
    reason = seen.unsupported or unmigratable(payload, chat)
    if reason is not None:
        return reason
    body = dict(payload)
    key = _budget_key(payload, chat)
    if key is not None:
        budget = payload.get(key)
        if budget is None:
            budget = COMPLETIONS_DEFAULT_MAX_TOKENS
        if not isinstance(budget, int) or budget - seen.tokens <= 0:
            return "the token budget is used up"
        body[key] = budget - seen.tokens
    min_tokens = payload.get("min_tokens")
    if isinstance(min_tokens, int) and min_tokens:
        body["min_tokens"] = max(0, min_tokens - seen.tokens)
    if not chat:
        body["prompt"] = payload["prompt"] + seen.text
        return body
    messages = list(payload["messages"])
    last = messages[-1]
    if payload.get("continue_final_message") and isinstance(last, dict):
        messages[-1] = {**last, "content": last["content"] + seen.text}
    else:
        messages.append({"role": "assistant", "content": seen.text})
    body["messages"] = messages
    body["continue_final_message"] = True
    body["add_generation_prompt"] = False
    return body


class Splice:
    """Rewrites a continuation's events so they read as the first stream's own."""

    __slots__ = ("_chat", "_first", "_pending", "_theirs", "_opened")

    def __init__(self, first: Streamed, chat: bool) -> None:
        self._chat = chat
        self._first = first
        self._pending = b""
        self._theirs: tuple[bytes, bytes] | None = None  # the continuation's id and created fields
        self._opened = not chat  # a chat continuation's opening (role) event is still to drop

    def feed(self, data: bytes) -> bytes:
        """The rewritten complete events in `data` (an incomplete last one waits for the rest)."""
        data = self._pending + data
        cut = data.rfind(_SEP)
        if cut < 0:
            self._pending = data
            return b""
        self._pending = data[cut + 2:]
        out = []
        for event in data[:cut].split(_SEP):
            rewritten = self._event(event + _SEP)
            if rewritten:
                out.append(rewritten)
        return b"".join(out)

    def _event(self, event: bytes) -> bytes:
        payloads = read_events(event)
        if not payloads or payloads[0].strip() == b"[DONE]":
            return event
        try:
            obj = orjson.loads(payloads[0])
        except orjson.JSONDecodeError:
            return event
        if not isinstance(obj, dict) or "error" in obj:
            return event
        if not self._opened:
            self._opened = True
            choices = obj.get("choices") or []
            delta = choices[0].get("delta", {}) if choices and isinstance(choices[0], dict) else {}
            if (delta.get("role") and not delta.get("content")
                    and choices[0].get("finish_reason") is None):
                return b""  # the opening the client already had
        if obj.get("usage") and not obj.get("choices"):
            return self._usage(obj)
        return self._stamp(event, obj)

    def _stamp(self, event: bytes, obj: dict[str, Any]) -> bytes:
        first = self._first
        if self._theirs is None:
            self._theirs = (_field("id", obj.get("id")), _field("created", obj.get("created")))
        their_id, their_created = self._theirs
        mine_id, mine_created = _field("id", first.id), _field("created", first.created)
        if first.id is not None and their_id != mine_id:
            event = event.replace(their_id, mine_id, 1)
        if first.created is not None and their_created != mine_created:
            event = event.replace(their_created, mine_created, 1)
        return event

    def _usage(self, obj: dict[str, Any]) -> bytes:
        usage = dict(obj["usage"])
        streamed = self._first.tokens
        if isinstance(usage.get("prompt_tokens"), int) and isinstance(usage.get("completion_tokens"), int):
            usage["prompt_tokens"] = max(0, usage["prompt_tokens"] - streamed)
            usage["completion_tokens"] += streamed
        obj = {**obj, "usage": usage}
        if self._first.id is not None:
            obj["id"] = self._first.id
        if self._first.created is not None:
            obj["created"] = self._first.created
        return _DATA + orjson.dumps(obj) + _SEP


def engine_failure(events: bytes) -> int | None:
    """Where, in complete events, the engine says it failed the request mid-stream: the offset
    of an error event with a 5xx code (vLLM writes one and then `data: [DONE]` when its engine
    core dies or generation errors: `create_streaming_error_response`, code 500) or of a chunk
    whose `finish_reason` is `"abort"` (the engine aborted the request itself: shut down with no
    drain left, `FinishReason.ABORT`); None when there is neither. A 4xx error event is the
    request's fault and stays as it is."""
    offset = 0
    for event in events.split(_SEP):
        size = len(event) + 2
        if b'"error"' in event or b'"abort"' in event:
            for payload in read_events(event + _SEP):
                if _failed(payload):
                    return offset
        offset += size
    return None


def _failed(payload: bytes) -> bool:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(obj, dict):
        return False
    error = obj.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        return not isinstance(code, int) or code >= 500
    return any(isinstance(c, dict) and c.get("finish_reason") == "abort" for c in obj.get("choices") or ())


def _field(name: str, value: Any) -> bytes:
    """`"name":value` as it appears in compact JSON."""
    return b'"' + name.encode() + b'":' + orjson.dumps(value)

