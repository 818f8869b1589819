"""HTTP handlers of one emulated engine: vLLM's OpenAI-compatible server over aiohttp.

Routes: `POST /v1/chat/completions`, `/v1/completions` (streamed or not), `/v1/embeddings`,
`GET /v1/models`, `/health`, `/metrics`, `POST /v1/load_lora_adapter` and
`/v1/unload_lora_adapter` (with LoRA and runtime updating on, else FastAPI's 404 for a route vLLM
does not mount: `{"detail": "Not Found"}`); and the emulator's own `GET /emulator/stats`,
`GET /emulator/requests[?id=X][&limit=N]`, `GET|POST /emulator/faults`, `POST /emulator/cached`
(what the cache holds of a request's prompt now, without serving it). A client that
disconnects cancels its request (the batch slot is freed). The handlers only parse, consult
the faults and move bytes; the model lives in `EngineRuntime`, the listener's life (and
death) in `server.EngineServer`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from contracts import (
    HEADER_REQUEST_ID,
    PATH_CHAT,
    PATH_COMPLETIONS,
    PATH_EMBEDDINGS,
    PATH_HEALTH,
    PATH_LOAD_LORA,
    PATH_METRICS,
    PATH_MODELS,
    PATH_UNLOAD_LORA,
    PROXIED_PATHS,
)
from emulator import tokenize as tokenizer
from emulator import wire
from emulator.engine import Channel, EngineRuntime
from emulator.errors import ConfigError, WireError
from emulator.faults import Faults
from emulator.generation import Continuation
from emulator.lora import adapter_rank, load_request, path_found, success, unload_request
from emulator.metrics import CONTENT_TYPE

ADMIN_PREFIX = "/emulator/"
RUNTIME: web.AppKey[EngineRuntime] = web.AppKey("runtime", EngineRuntime)
TRANSPORTS: web.AppKey[set[asyncio.BaseTransport]] = web.AppKey("transports", set)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _error(status: int, message: str, error_type: str, param: str | None = None) -> web.Response:
    return _json(wire.error_body(status, message, error_type, param), status)


def _track(transports: set[asyncio.BaseTransport], transport: asyncio.BaseTransport) -> None:
    """Remember an open connection (so a dying engine can drop it); forget closed ones."""
    if len(transports) >= 256:
        transports.difference_update([t for t in transports if t.is_closing()])
    transports.add(transport)


@web.middleware
async def _faults_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Translate `WireError`, and apply the engine-wide faults to every non-admin route."""
    runtime = request.app[RUNTIME]
    faults = runtime.faults
    admin = request.path.startswith(ADMIN_PREFIX)
    transport = request.transport
    if transport is not None:
        if faults.dead:
            transport.abort()
            raise web.HTTPServiceUnavailable()
        _track(request.app[TRANSPORTS], transport)
    if faults.status is not None and not admin:
        return _error(faults.status, "Injected fault", "InternalServerError")
    if faults.stall and request.path in PROXIED_PATHS:
        await asyncio.Event().wait()  # until the client gives up (handler cancelled)
    try:
        return await handler(request)
    except WireError as exc:
        return _error(exc.status, exc.message, exc.error_type, exc.param)


async def _generate(request: web.Request, kind: wire.Kind) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    parsed = wire.parse_generation(await request.read(), kind, runtime.config, runtime.adapters)
    base_id = request.headers.get(HEADER_REQUEST_ID) or uuid.uuid4().hex
    rid = wire.request_id(kind, base_id)
    fail = runtime.draw_failure()
    fail_after = runtime.faults.fail_after_tokens if fail else 0
    if fail and (fail_after == 0 or not parsed.stream):
        return _error(500, "Injected failure", "InternalServerError")
    channel = runtime.submit(parsed, base_id)
    words = Continuation(parsed.prompt, runtime.salt(parsed.salt))
    failed = False
    try:
        if not parsed.stream:
            return await _unary(channel, parsed, rid, words, runtime.created())
        response, failed = await _stream(request, channel, parsed, (rid, words), fail_after)
        return response
    finally:
        runtime.close(channel, failed=failed)


async def _unary(channel: Channel, parsed: wire.ParsedRequest, rid: str, words: Continuation,
                 created: int) -> web.Response:
    seen = 0
    while channel.finish_reason is None:
        seen = await channel.wait_beyond(seen)
    assert channel.finish_reason is not None
    text = "".join(words.upto(channel.tokens))
    return _json(wire.completion_body(parsed, rid, created, text, channel.tokens, channel.finish_reason))


async def _stream(request: web.Request, channel: Channel, parsed: wire.ParsedRequest,
                  answer: tuple[str, Continuation], fail_after: int) -> tuple[web.StreamResponse, bool]:
    """Stream tokens as SSE; the flag is True when an injected failure broke the stream."""
    rid, words = answer
    runtime = request.app[RUNTIME]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    encoder = wire.StreamEncoder(parsed.kind, rid, runtime.created(), parsed.model)
    sent, finish = 0, None
    while finish is None:
        ready = await channel.wait_beyond(sent)
        if fail_after and ready >= fail_after:
            broken = encoder.error(500, "Injected failure", "InternalServerError") + encoder.done()
            head = _opening(encoder, sent) + encoder.tokens(words.upto(fail_after)[sent:], None)
            await response.write(head + broken)
            await response.write_eof()
            return response, True
        ready = min(ready, _fault_point(runtime.faults, sent))  # a fault cuts at its token exactly
        finish = channel.finish_reason if ready == channel.tokens else None
        await response.write(_opening(encoder, sent) + _chunks(encoder, words.upto(ready)[sent:], finish))
        sent = ready
        await _stream_faults(request, sent, finish)
    tail = encoder.usage(parsed.prompt_tokens, sent) if parsed.include_usage else b""
    await response.write(tail + encoder.done())
    await response.write_eof()
    return response, False


def _fault_point(faults: Faults, sent: int) -> int:
    """The token count a mid-stream fault strikes at next, beyond `sent` (a large number when none)."""
    points = [n for n in (faults.die_after_tokens, faults.stall_after_tokens) if n > sent]
    return min(points, default=1 << 62)


async def _stream_faults(request: web.Request, sent: int, finish: str | None) -> None:
    """Mid-stream faults once `sent` tokens are out: stall (never send more) or die."""
    faults = request.app[RUNTIME].faults
    if finish is not None:
        return
    if faults.die_after_tokens and sent >= faults.die_after_tokens:
        await request.app[SETTER](dataclasses.replace(faults, dead=True))
        raise asyncio.CancelledError  # our connection was reset with the others
    if faults.stall_after_tokens and sent >= faults.stall_after_tokens:
        await asyncio.Event().wait()  # until the client gives up (handler cancelled)


def _chunks(encoder: wire.StreamEncoder, new: list[str], finish: str | None) -> bytes:
    """The new tokens' chunks; an abort comes as its own chunk with no token, as vLLM's does."""
    if finish == wire.FINISH_ABORT:
        return encoder.tokens(new, None) + encoder.tokens([], finish)
    return encoder.tokens(new, finish)


def _opening(encoder: wire.StreamEncoder, sent: int) -> bytes:
    return encoder.role() if sent == 0 else b""


async def chat(request: web.Request) -> web.StreamResponse:
    """`POST /v1/chat/completions`."""
    return await _generate(request, "chat")


async def completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/completions`."""
    return await _generate(request, "completion")


async def embeddings(request: web.Request) -> web.Response:
    """`POST /v1/embeddings`: deterministic vectors, no scheduling."""
    runtime = request.app[RUNTIME]
    model, inputs = wire.parse_embedding(await request.read(), runtime.config, runtime.adapters)
    rid = "embd-" + (request.headers.get(HEADER_REQUEST_ID) or uuid.uuid4().hex)
    return _json(wire.embeddings_body(model, rid, runtime.created(), inputs, runtime.config.embedding_dim))


async def models(request: web.Request) -> web.Response:
    """`GET /v1/models`."""
    runtime = request.app[RUNTIME]
    config = runtime.config
    return _json(wire.models_body(config.model, int(time.time()), config.context_limit, runtime.adapters))


_NOT_FOUND = b'{"detail":"Not Found"}'  # FastAPI's answer for a route that is not mounted


def _runtime_updating(runtime: EngineRuntime) -> bool:
    """Whether vLLM would mount the load/unload routes (LoRA on, runtime updating allowed)."""
    return runtime.config.lora is not None and runtime.config.lora.runtime_updating


async def _lora_body(request: web.Request) -> object:
    """The JSON body of a LoRA admin request, refused as vLLM's `validate_json_request` does."""
    if request.content_type != "application/json":
        raise WireError(400, "Unsupported Media Type: Only 'application/json' is allowed")
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise WireError(400, f"JSON decode error: {exc}", param="body") from None


async def load_lora_adapter(request: web.Request) -> web.Response:
    """`POST /v1/load_lora_adapter`: answers once the adapter is in a GPU slot."""
    runtime = request.app[RUNTIME]
    if not _runtime_updating(runtime):
        return _json(_NOT_FOUND, 404)
    name, path, inplace = load_request(await _lora_body(request))
    found = bool(path) and path_found(path)
    cost = runtime.load_adapter(name, path, found=found, load_inplace=inplace,
                                rank=adapter_rank(path) if found else None)
    await asyncio.sleep(cost * runtime.config.timing.time_scale)
    return web.Response(text=success(name, loaded=True))


async def unload_lora_adapter(request: web.Request) -> web.Response:
    """`POST /v1/unload_lora_adapter`."""
    runtime = request.app[RUNTIME]
    if not _runtime_updating(runtime):
        return _json(_NOT_FOUND, 404)
    name = unload_request(await _lora_body(request))
    assert runtime.adapters is not None
    runtime.adapters.unload(name)
    return web.Response(text=success(name, loaded=False))


async def tokenize(request: web.Request) -> web.Response:
    """`POST /tokenize` (emulator.tokenize)."""
    return await tokenizer.tokenize(request, request.app[RUNTIME].config.context_limit)


async def health(request: web.Request) -> web.Response:
    """`GET /health`: 200 with an empty body, like vLLM (also while it drains: vLLM's engine is
    not dead then), after `health_delay_s` when that fault is set."""
    delay = request.app[RUNTIME].faults.health_delay_s
    if delay:
        await asyncio.sleep(delay)
    return web.Response(status=200)


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: Prometheus text."""
    text = request.app[RUNTIME].metrics_text()
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


async def gpu_metrics(request: web.Request) -> web.Response:
    """`GET /emulator/dcgm`: emulated dcgm-exporter series for this engine's GPU."""
    return web.Response(body=request.app[RUNTIME].gpu_metrics_text().encode(),
                        headers={"Content-Type": CONTENT_TYPE})


async def stats(request: web.Request) -> web.Response:
    """`GET /emulator/stats`: cache and scheduler counters as JSON."""
    return _json(orjson.dumps(request.app[RUNTIME].stats()))


async def recent_requests(request: web.Request) -> web.Response:
    """`GET /emulator/requests[?id=X][&limit=N]`: server-side timings of recent requests."""
    journal = request.app[RUNTIME].journal
    wanted = request.query.get("id")
    if wanted is not None:
        record = journal.get(wanted)
        if record is None:
            return _error(404, f"No recent request with id {wanted!r}", "NotFoundError", "id")
        return _json(orjson.dumps(record.to_dict()))
    limit_text = request.query.get("limit", "1000")
    if not limit_text.isdigit():
        return _error(400, f"limit must be a non-negative integer (got {limit_text!r})", "BadRequestError",
                      "limit")
    records = journal.recent(int(limit_text))
    return _json(orjson.dumps({"requests": [r.to_dict() for r in records]}))


async def cached(request: web.Request) -> web.Response:
    """`POST /emulator/cached`: the body of a chat (with `messages`) or completion request; answers
    `{"prompt_tokens", "gpu_hit_tokens", "cpu_hit_tokens"}` the cache would serve it from now
    (vLLM's rule: whole blocks before the last token), leaving the cache and its counters as
    they are. A benchmark's reference for what a router could have found."""
    runtime = request.app[RUNTIME]
    body = await request.read()
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(400, f"JSON decode error: {exc}") from None
    kind: wire.Kind = "chat" if isinstance(decoded, dict) and "messages" in decoded else "completion"
    lookup = runtime.cached(wire.parse_generation(body, kind, runtime.config, runtime.adapters))
    return _json(orjson.dumps({"prompt_tokens": lookup.prompt_tokens, "gpu_hit_tokens": lookup.gpu_hit_tokens,
                               "cpu_hit_tokens": lookup.cpu_hit_tokens}))


FaultsSetter = Callable[[Faults], Awaitable[None]]
SETTER: web.AppKey[FaultsSetter] = web.AppKey("set_faults")


async def get_faults(request: web.Request) -> web.Response:
    """`GET /emulator/faults`."""
    return _json(orjson.dumps(request.app[RUNTIME].faults.to_dict()))


async def post_faults(request: web.Request) -> web.Response:
    """`POST /emulator/faults`: the body is the whole new fault set (`{}` clears)."""
    try:
        body = orjson.loads(await request.read())
        if not isinstance(body, dict):
            raise WireError(400, "The fault set must be a JSON object")
        faults = Faults.from_dict(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(400, f"JSON decode error: {exc}") from None
    except (ConfigError, TypeError) as exc:
        raise WireError(400, str(exc)) from None
    response = _json(orjson.dumps(faults.to_dict()))
    await request.app[SETTER](faults)
    return response


def build_app(runtime: EngineRuntime, set_faults: FaultsSetter) -> web.Application:
    """The aiohttp application of one engine."""
    app = web.Application(middlewares=[_faults_middleware], client_max_size=64 * 1024 * 1024)
    app[RUNTIME] = runtime
    app[SETTER] = set_faults
    app[TRANSPORTS] = set()
    app.router.add_post(PATH_CHAT, chat)
    app.router.add_post(PATH_COMPLETIONS, completions)
    app.router.add_post(PATH_EMBEDDINGS, embeddings)
    app.router.add_get(PATH_MODELS, models)
    app.router.add_post(PATH_LOAD_LORA, load_lora_adapter)
    app.router.add_post(PATH_UNLOAD_LORA, unload_lora_adapter)
    app.router.add_post("/tokenize", tokenize)
    app.router.add_post("/detokenize", tokenizer.detokenize)
    app.router.add_get(PATH_HEALTH, health)
    app.router.add_get(PATH_METRICS, metrics)
    app.router.add_get(ADMIN_PREFIX + "stats", stats)
    app.router.add_get(ADMIN_PREFIX + "dcgm", gpu_metrics)
    app.router.add_get(ADMIN_PREFIX + "requests", recent_requests)
    app.router.add_get(ADMIN_PREFIX + "faults", get_faults)
    app.router.add_post(ADMIN_PREFIX + "faults", post_faults)
    app.router.add_post(ADMIN_PREFIX + "cached", cached)
    return app
