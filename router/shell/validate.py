"""Validation of proxied request bodies: pure, and total over any bytes a client can send.

Whatever the body, `parse_body` either returns the decoded object with the fields the
engine needs or raises `BadRequest` naming what is wrong; it never lets an unexpected
exception out (client input never produces a 500).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from contracts import PATH_CHAT, PATH_COMPLETIONS, PATH_EMBEDDINGS
from router.routing.lax import as_bool
from router.routing.prompt import prompt_text
from router.shell.errors import BadRequest

_REQUIRED = {PATH_CHAT: "messages", PATH_COMPLETIONS: "prompt", PATH_EMBEDDINGS: "input"}


def parse_body(body: bytes, path: str) -> dict[str, Any]:
    """The JSON object of a request to `path`, with its required fields checked."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = _lenient_loads(body)
    if not isinstance(payload, dict):
        raise BadRequest(f"request body must be a JSON object (got {type(payload).__name__})")
    model = payload.get("model")
    if model is not None and not isinstance(model, str):  # absent, null or "": the served model
        raise BadRequest(f"'model' must be a string (got {type(model).__name__})", param="model")
    required = _REQUIRED.get(path)  # the pass-through routes' fields are the engine's to check
    if required is not None and required not in payload:
        raise BadRequest(f"'{required}' is required for {path}", param=required)
    if path == PATH_CHAT and not _is_messages(payload["messages"]):
        raise BadRequest("'messages' must be a non-empty list of objects, each with a string 'role'",
                         param="messages")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        try:
            payload["stream"] = as_bool(stream)  # as vLLM's pydantic model reads it: "true", 1, ...
        except ValueError:
            raise BadRequest(f"'stream' must be a boolean (got {stream!r})", param="stream") from None
    return payload


def _lenient_loads(body: bytes) -> Any:
    """What orjson refused, read as vLLM reads it (the standard library's JSON, through
    FastAPI): a lone surrogate escape such as `\\ud800` is accepted there, so it is here; anything
    else gets a 400 naming the byte (invalid UTF-8) or the character (invalid JSON) at fault."""
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8: byte 0x{body[exc.start]:02x} at byte offset "
                         f"{exc.start}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno} (character {exc.pos})") from None
    except RecursionError:
        raise BadRequest("request body is not valid JSON: nested too deeply") from None


def _is_messages(messages: Any) -> bool:
    """A non-empty list of objects each with a string `role` (vLLM's message params all
    require one: vllm/renderers/chat_utils/types.py)."""
    return (isinstance(messages, list) and bool(messages)
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages))


def prompt_bytes(payload: dict[str, Any]) -> bytes:
    """The prompt as the engine sees it, as bytes for the routing policy."""
    try:
        return prompt_text(payload).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, AttributeError):
        raise BadRequest("message content must be a string or a list of text parts") from None
