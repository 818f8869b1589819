"""Streaming chat client: one aiohttp session, one connection pool, every request streamed.

Timing is `time.perf_counter()` taken around the socket reads: launch just before the
request is written, the first *content* chunk for TTFT, each later content chunk for the
inter-token latencies, the `[DONE]` line (or the stream's end) for end-to-end latency.
Token counts come from the usage chunk (`stream_options.include_usage`). aiohttp sets
TCP_NODELAY on every connection it opens (`BaseProtocol.connection_made`), so small SSE
chunks are not held back by Nagle's algorithm.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.errors import EndpointError
from bench.records import STATUS_NO_RESPONSE, STATUS_OK
from contracts import HEADER_REQUEST_ID, HEADER_USER_ID, PATH_CHAT, PATH_MODELS

_DATA = b"data:"
_DONE = b"[DONE]"


@dataclass(kw_only=True)
class StreamResult:
    """Raw outcome of one streamed request; times are absolute `perf_counter` seconds."""

    launch: float
    token_times: list[float] = field(default_factory=list)
    done: float | None = None
    text: str = ""
    prompt_tokens: int = 0
    output_tokens: int = 0
    status: int = STATUS_NO_RESPONSE
    error: str = ""


def new_session(request_timeout_s: float) -> aiohttp.ClientSession:
    """The one session (and connection pool) a benchmark run uses: no connection cap, so a
    slow answer never delays another user's launch."""
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=request_timeout_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)


def _error_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
        return str(data["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body[:200].decode(errors="replace") or "empty body"


def _content(chunk: Mapping[str, Any]) -> str:
    choices = chunk.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], Mapping):
        return ""
    delta = choices[0].get("delta")
    if not isinstance(delta, Mapping):
        return ""
    return delta.get("content") or delta.get("reasoning_content") or ""


class ChatClient:
    """Sends chat requests to an OpenAI-compatible server and measures each stream."""

    def __init__(self, session: aiohttp.ClientSession, root_url: str, model: str, api_key: str = "",
                 extra_body: Mapping[str, Any] | None = None) -> None:
        self._session = session
        self._url = root_url.rstrip("/") + PATH_CHAT
        self._model = model
        self._extra = dict(extra_body or {})
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"

    def _body(self, messages: Sequence[Mapping[str, str]], max_tokens: int) -> bytes:
        body = {"model": self._model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
                "stream": True, "stream_options": {"include_usage": True}, **self._extra}
        return orjson.dumps(body)

    async def stream_chat(self, messages: Sequence[Mapping[str, str]], *, max_tokens: int,
                          user_id: str, request_id: str) -> StreamResult:
        """Send one streamed chat request and time it. Never raises for HTTP or connection
        failures: they land in `status` and `error`."""
        data = self._body(messages, max_tokens)
        headers = {**self._headers, HEADER_REQUEST_ID: request_id, HEADER_USER_ID: user_id}
        result = StreamResult(launch=time.perf_counter())
        try:
            async with self._session.post(self._url, data=data, headers=headers) as resp:
                result.status = resp.status
                if resp.status != STATUS_OK:
                    result.error = _error_message(await resp.read())
                    result.done = time.perf_counter()
                    return result
                await _read_stream(resp, result)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except orjson.JSONDecodeError as exc:
            result.error = f"malformed SSE chunk: {exc}"
        return result


async def _read_stream(resp: aiohttp.ClientResponse, result: StreamResult) -> None:
    pieces: list[str] = []
    async for line in resp.content:
        now = time.perf_counter()
        if not line.startswith(_DATA):
            continue
        payload = line[len(_DATA):].strip()
        if payload == _DONE:
            result.done = now
            break
        chunk = orjson.loads(payload)
        if not isinstance(chunk, dict):
            raise orjson.JSONDecodeError("SSE data is not a JSON object", payload.decode(errors="replace"), 0)
        if "error" in chunk:
            result.error = str((chunk["error"] or {}).get("message", "error in stream"))
        text = _content(chunk)
        if text:
            pieces.append(text)
            result.token_times.append(now)
        usage = chunk.get("usage")
        if usage:
            result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            result.output_tokens = int(usage.get("completion_tokens") or 0)
    result.text = "".join(pieces)
    if result.done is None and not result.error:
        result.error = "stream ended before [DONE]"


async def served_models(session: aiohttp.ClientSession, root_url: str, api_key: str = "",
                        timeout_s: float = 10.0) -> list[str]:
    """The model ids `GET /v1/models` lists; EndpointError when the server cannot be reached
    or does not answer like an OpenAI-compatible one."""
    url = root_url.rstrip("/") + PATH_MODELS
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            body = await resp.read()
            if resp.status != STATUS_OK:
                raise EndpointError(f"--base-url: GET {url} answered {resp.status}: {_error_message(body)}")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise EndpointError(f"--base-url: cannot reach {url} ({type(exc).__name__}: {exc})") from None
    try:
        return [str(m["id"]) for m in orjson.loads(body)["data"]]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise EndpointError(f"--base-url: GET {url} did not return an OpenAI model list") from None
