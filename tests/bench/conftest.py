"""A tiny OpenAI-compatible SSE server for the benchmark's loopback tests (a fake, not a
mock: real HTTP on 127.0.0.1). It streams a fixed answer with a small pause per token,
counts prefix-cache tokens like vLLM (a block is a hit when an earlier prompt had it), and
keeps every request it saw for assertions. It runs on its own thread so that both the
async API and the CLI (which owns its event loop) can call it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from contracts import HEADER_USER_ID, PATH_CHAT, PATH_METRICS, PATH_MODELS
from router.routing.prompt import block_hashes, blocks_to_tokens, count_tokens, prompt_text

MODEL = "fake/llama"


@dataclass
class FakeEngine:
    """State of the fake server; `url` is its root."""

    tokens: int = 5
    token_pause_s: float = 0.001
    fail_every: int = 0
    stream_fault: str = ""  # "garbage" | "error_event" | "truncated": break every stream that way
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    blocks: set[int] = field(default_factory=set)
    queries: int = 0
    hits: int = 0

    def metrics_text(self) -> str:
        return (
            "# TYPE vllm:prefix_cache_queries_total counter\n"
            f'vllm:prefix_cache_queries_total{{model_name="{MODEL}"}} {float(self.queries)}\n'
            f'vllm:prefix_cache_hits_total{{model_name="{MODEL}"}} {float(self.hits)}\n'
        )

    def account(self, prompt: str) -> int:
        hashes = block_hashes(prompt)
        cached = 0
        for h in hashes:
            if h not in self.blocks:
                break
            cached += 1
        self.blocks.update(hashes)
        tokens = count_tokens(prompt)
        self.queries += tokens
        self.hits += blocks_to_tokens(cached)
        return tokens


def _chunk(content: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}}]
    body: dict[str, Any] = {"object": "chat.completion.chunk", "model": MODEL, "choices": choices}
    if usage:
        body["usage"] = usage
    return b"data: " + orjson.dumps(body) + b"\n\n"


_FAULTS = {
    "garbage": b"data: {not json\n\n",
    "error_event": b'data: {"error": {"message": "engine died mid-stream", "code": 500}}\n\ndata: [DONE]\n\n',
    "truncated": b"",
}


def _app(engine: FakeEngine) -> web.Application:
    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=engine.metrics_text())

    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        engine.seen.append({"body": body, "request_id": request.headers.get("x-request-id"),
                            "user_id": request.headers.get(HEADER_USER_ID),
                            "auth": request.headers.get("authorization")})
        if engine.fail_every and len(engine.seen) % engine.fail_every == 0:
            error = {"error": {"message": "injected failure", "type": "InternalServerError", "code": 500}}
            return web.json_response(error, status=500)
        prompt_tokens = engine.account(prompt_text(body))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(min(engine.tokens, body["max_tokens"])):
            await asyncio.sleep(engine.token_pause_s)
            await resp.write(_chunk("tok "))
        if engine.stream_fault:
            await resp.write(_FAULTS[engine.stream_fault])
            return resp
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": min(engine.tokens, body["max_tokens"])}
        await resp.write(_chunk(usage=usage))
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_get(PATH_MODELS, models)
    app.router.add_get(PATH_METRICS, metrics)
    app.router.add_post(PATH_CHAT, chat)
    return app


@pytest.fixture
def fake_engine() -> Iterator[FakeEngine]:
    """A running fake engine on a loopback port (its own thread and loop), stopped after."""
    engine = FakeEngine()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(_app(engine))

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        engine.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    assert ready.wait(10), "fake engine did not start within 10 s"
    yield engine
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
