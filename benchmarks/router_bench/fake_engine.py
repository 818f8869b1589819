"""A fast fake upstream engine for the router speed benchmark.

Not the emulator: no cache, no timing model. It answers vLLM's wire format with fixed small
bodies so that, in a speed run, nearly all CPU is the router's and the engine's own cost is
small and measured (the `direct` rows of the benchmark). One process serves several ports on
one event loop (raw asyncio + httptools):

- `POST /v1/completions`, `/v1/chat/completions` (and sglang's `/generate`): a fixed JSON
  body, or with `"stream": true` one SSE event per token (`max_tokens` of them, one HTTP
  chunk each, `--token-gap-ms` apart so a router forwards them one by one, as from a real
  engine) then `data: [DONE]`.
- `GET /health`, `/v1/models`, `/metrics` (zeros under vLLM's names), `/get_model_info`,
  `/get_server_info` (asked by sglang-router).
- `GET /stats`: requests per conversation key on this port (the header `x-user-id`, else the
  prompt's first 128 bytes), `DELETE /stats` resets them. The benchmark compares these maps
  to check that two router setups made the same routing decisions.

Run: `python -m benchmarks.router_bench.fake_engine --ports 18001,18002`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
from collections.abc import Callable

import httptools
import orjson

import contracts as c

MODEL = "fake-model"
_KEY_BYTES = 128
_CHUNK_CONTENT = b"data: " + orjson.dumps({
    "id": "cmpl-fake", "object": "text_completion", "created": 0, "model": MODEL,
    "choices": [{"index": 0, "text": " tok", "logprobs": None, "finish_reason": None}],
}) + b"\n\n"
_STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(payload), payload)


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 %b\r\ncontent-type: %b\r\ncontent-length: %d\r\n\r\n%b"
            % (status.encode(), content_type, len(body), body))


def _completion_body(tokens: int) -> bytes:
    return orjson.dumps({
        "id": "cmpl-fake", "object": "text_completion", "created": 0, "model": MODEL,
        "choices": [{"index": 0, "text": " tok" * tokens, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 2048, "completion_tokens": tokens, "total_tokens": 2048 + tokens},
    })


def _metrics_body() -> bytes:
    label = f'{{{c.ENGINE_MODEL_LABEL}="{MODEL}"}}'
    names = (c.VLLM_RUNNING, c.VLLM_WAITING, c.VLLM_KV_USAGE, c.VLLM_PREFIX_QUERIES, c.VLLM_PREFIX_HITS)
    return "".join(f"{name}{label} 0\n" for name in names).encode()


_STATIC_GET: dict[bytes, bytes] = {
    c.PATH_HEALTH.encode(): _response("200 OK", b"{}"),
    c.PATH_MODELS.encode(): _response("200 OK", orjson.dumps(
        {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "fake"}]})),
    c.PATH_METRICS.encode(): _response("200 OK", _metrics_body(), b"text/plain; version=0.0.4"),
    b"/get_model_info": _response("200 OK", orjson.dumps({"model_path": MODEL, "is_generation": True})),
    b"/get_server_info": _response("200 OK", orjson.dumps({"model_path": MODEL})),
}
_NOT_FOUND = _response("404 Not Found", orjson.dumps(
    {"error": {"message": "not found", "type": "NotFoundError", "code": 404}}))


class EngineState:
    """Per-port request counts by conversation key."""

    def __init__(self, token_gap_s: float) -> None:
        self.token_gap_s = token_gap_s
        self.counts: collections.Counter[str] = collections.Counter()


def _conversation_key(headers: dict[bytes, bytes], body: dict) -> str:
    user = headers.get(c.HEADER_USER_ID.encode())
    if user:
        return user.decode()
    prompt = body.get("prompt") or orjson.dumps(body.get("messages") or body.get("text") or "").decode()
    return str(prompt)[:_KEY_BYTES]


class _HttpProtocol(asyncio.Protocol):
    """One connection: parse requests with httptools, answer from `EngineState`."""

    def __init__(self, state: EngineState) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        if method == b"GET" and path in _STATIC_GET:
            self.transport.write(_STATIC_GET[path])
        elif path == b"/stats":
            self._stats(method)
        elif method == b"POST":
            self._generate()
        else:
            self.transport.write(_NOT_FOUND)

    def _stats(self, method: bytes) -> None:
        if method == b"DELETE":
            self.state.counts.clear()
        self.transport.write(_response("200 OK", orjson.dumps(dict(self.state.counts))))

    def _generate(self) -> None:
        try:
            body = orjson.loads(b"".join(self.body))
        except orjson.JSONDecodeError:
            self.transport.write(_response("400 Bad Request", b'{"error":{"message":"bad json"}}'))
            return
        self.state.counts[_conversation_key(self.headers, body)] += 1
        tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        if body.get("stream"):
            asyncio.get_running_loop().create_task(_stream(self.transport, tokens, self.state.token_gap_s))
        else:
            self.transport.write(_response("200 OK", _completion_body(tokens)))


async def _stream(transport: asyncio.Transport, tokens: int, gap_s: float) -> None:
    """One SSE event per token, each its own HTTP chunk, `gap_s` apart, then [DONE]."""
    transport.write(_STREAM_HEAD)
    event = _chunk(_CHUNK_CONTENT)
    for _ in range(tokens):
        if transport.is_closing():
            return
        transport.write(event)
        await asyncio.sleep(gap_s)
    transport.write(_chunk(c.SSE_DONE) + b"0\r\n\r\n")


async def serve(ports: list[int], token_gap_s: float, host: str = "127.0.0.1",
                ready: Callable[[], None] | None = None) -> None:
    """Serve one fake engine per port until cancelled."""
    loop = asyncio.get_running_loop()
    servers = []
    for port in ports:
        state = EngineState(token_gap_s)
        servers.append(await loop.create_server(lambda s=state: _HttpProtocol(s), host, port,
                                                reuse_address=True))
    if ready:
        ready()
    try:
        await asyncio.gather(*(s.serve_forever() for s in servers))
    finally:
        for server in servers:
            server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", required=True, help="comma-separated loopback ports")
    parser.add_argument("--token-gap-ms", type=float, default=1.0)
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(serve([int(p) for p in args.ports.split(",")], args.token_gap_ms / 1000.0))


if __name__ == "__main__":
    main()
