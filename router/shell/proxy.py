"""Forwarding one OpenAI request: authenticate, validate, pick an engine, relay the answer.

`Proxy` is a raw ASGI endpoint: the app dispatches the proxied POSTs to it ahead of FastAPI's
routing and middleware, so no request object, response class or per-message `send` wrapper
sits on the hot path (figures: benchmarks/RESULTS.md, section Router).

When no engine of the model can take the request (none yet, none in rotation, all at the
per-engine bound) and holding is on, the request waits in the hold queue (`router.shell.hold`)
instead of being refused; while anything of its model is held, a newcomer queues behind it.

A failure before the client has received a byte (connection refused, the engine closing
without answering, an engine 502/503/504) is retried on another engine, up to `max_retries`.
A failure mid-stream ends the stream with an SSE error event and is counted. The engine's
in-flight count and the policy's `on_complete` are kept exact on every path. A client that
goes away cancels the request,
which closes the upstream connection and so stops the engine's work. On the router's own
server that is a hook the connection runs when it is lost (`router.shell.server.DisconnectHooks`);
elsewhere a watcher task reading the ASGI `receive` channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from contracts import HEADER_REQUEST_ID
from router.routing.base import Decision, EngineState, NoEngineError, RouteRequest, RoutingPolicy
from router.routing.engines import EngineRegistry
from router.shell.auth import ApiKeys
from router.shell.errors import (
    BadRequest,
    NoHealthyEngine,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RouterError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamFailed,
    UpstreamTimedOut,
    UpstreamTimeout,
    error_body,
    sse_error_event,
)
from router.shell.hold import Holding
from router.shell.metrics import RouterMetrics
from router.shell.ratelimit import RateLimiter
from router.shell.server import DISCONNECT_HOOKS, DisconnectHooks
from router.shell.upstream import Upstream, UpstreamResponse
from router.shell.validate import parse_body, prompt_bytes

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_RETRY_STATUSES = frozenset((502, 503, 504))
_EVENT_STREAM = b"text/event-stream"
_JSON = b"application/json"
# Client headers passed on to the engine: request correlation (vLLM logs and echoes
# x-request-id) and W3C trace context. Everything else stays at the router.
FORWARDED_HEADERS = (HEADER_REQUEST_ID, "traceparent", "tracestate")
_FORWARDED = frozenset(h.encode() for h in FORWARDED_HEADERS)


class ClientGone(Exception):
    """The client disconnected before its request body was in."""


class Reply:
    """The ASGI `send` of one request, tracking what has been sent."""

    __slots__ = ("send", "started", "done", "http10")

    def __init__(self, send: Send, http10: bool = False) -> None:
        self.send = send
        self.started = False
        self.done = False
        self.http10 = http10

    async def whole(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        """A complete answer with a content-length."""
        self.started = True
        await self.send({"type": "http.response.start", "status": status,
                         "headers": [*headers, (b"content-length", b"%d" % len(body))]})
        self.done = True
        await self.send({"type": "http.response.body", "body": body})

    async def error(self, err: RouterError) -> None:
        headers = [(b"content-type", _JSON), *((n.encode(), v.encode()) for n, v in err.headers)]
        await self.whole(err.status, err.body(), headers)

    async def start_stream(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """The stream's head: the engine's headers, with `cache-control: no-cache` unless the
        engine sent a cache-control of its own (one header, not two)."""
        self.started = True
        if not any(name == b"cache-control" for name, _ in headers):
            headers = [*headers, (b"cache-control", b"no-cache")]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def chunk(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self) -> None:
        self.done = True
        await self.send({"type": "http.response.body", "body": b""})


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; `PayloadTooLarge` past `limit` bytes, `ClientGone` on disconnect."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        parts.append(part)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


async def _watch_disconnect(receive: Receive, handler: asyncio.Task[Any], reply: Reply) -> None:
    """Cancel the handler when the client goes away before its answer is complete."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not reply.done:
                handler.cancel()
            return


def _cancel_on_disconnect(scope: Scope, receive: Receive, reply: Reply) -> Callable[[], None]:
    """Cancel the running handler if its client goes away before the answer is complete;
    returns the function that stops watching."""
    handler = asyncio.current_task()
    assert handler is not None
    hooks = scope.get("extensions", {}).get(DISCONNECT_HOOKS)
    if isinstance(hooks, DisconnectHooks):
        def lost() -> None:
            if not reply.done:
                handler.cancel()

        hooks.add(handler, lost)

        def stop() -> None:
            hooks.discard(handler)

        return stop
    watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, handler, reply))

    def stop_watcher() -> None:
        watcher.cancel()

    return stop_watcher


class Proxy:
    """The proxied routes' ASGI endpoint; everything it uses is injected."""

    def __init__(self, *, registry: EngineRegistry, policy: RoutingPolicy, upstream: Upstream,
                 metrics: RouterMetrics, keys: ApiKeys, limiter: RateLimiter | None,
                 session_header: str, max_retries: int, policy_kind: str, max_body_bytes: int,
                 holding: Holding | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.policy = policy
        self.upstream = upstream
        self.metrics = metrics
        self.keys = keys
        self.limiter = limiter
        self.session_header = session_header.encode("latin-1")
        self.max_retries = max_retries
        self.policy_kind = policy_kind
        self.max_body = max_body_bytes
        self.holding = holding
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /v1/chat/completions, /v1/completions, /v1/embeddings."""
        reply = Reply(send, scope.get("http_version") == "1.0")
        try:
            await self._serve(scope, receive, reply)
        except RouterError as err:
            if not reply.started:
                await reply.error(err)
            elif not reply.done:
                await reply.end()
        except ClientGone:
            return
        except asyncio.CancelledError:
            return  # the client went away (the watcher cancelled us): nobody to answer
        except Exception as exc:  # a router defect: answer in OpenAI shape, log with the traceback
            log.exception("unhandled error answering %s", scope.get("path"))
            if not reply.started:
                body = error_body(f"internal router error ({type(exc).__name__})", 500)
                await reply.whole(500, body, [(b"content-type", _JSON)])

    def authorize(self, headers: dict[bytes, bytes], client: str) -> str:
        """The caller's identity; raises 401 / 429."""
        keys = self.keys
        if keys.enabled:
            auth = headers.get(b"authorization")
            caller = keys.check(auth.decode("latin-1") if auth is not None else None)
        else:
            caller = client
        if self.limiter is not None:
            wait = self.limiter.acquire(caller, self.clock())
            if wait > 0:
                retry_after = str(max(1, int(wait + 0.999)))
                raise RateLimited("rate limit exceeded; retry later", headers=(("retry-after", retry_after),))
        return caller

    async def _serve(self, scope: Scope, receive: Receive, reply: Reply) -> None:
        headers = dict(scope["headers"])
        client = scope.get("client")
        caller = self.authorize(headers, client[0] if client else "")
        check_content_type(headers.get(b"content-type"))
        if self.holding is not None and self.holding.header in headers:
            self._band(caller, headers)  # a bad priority header is a 400 whether or not it is held
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise _too_large(self.max_body)
        body = await read_body(receive, self.max_body)
        path = scope["path"]
        payload = parse_body(body, path)
        model = self._model(payload.get("model"))
        session = headers.get(self.session_header)
        route = RouteRequest(model, prompt_bytes(payload),
                             session.decode("latin-1") if session is not None else None)
        stop_watching = _cancel_on_disconnect(scope, receive, reply)
        status, engine_id = 502, ""
        try:
            status, engine_id = await self._forward((path, body, forwarded_headers(headers)), route, reply,
                                                    (caller, headers))
        except RouterError as err:
            status = err.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away (nginx's convention)
            raise
        finally:
            stop_watching()
            self.metrics.requests.inc((model, engine_id, str(status)))

    def _model(self, model: str | None) -> str:
        """The model a request is for: as named, or the one model served when it names none
        (vLLM accepts a request without `model` and serves it with its model)."""
        registry = self.registry
        if not model:
            served = registry.served_models()
            if len(served) != 1:
                raise BadRequest("'model' is required when this router serves several models "
                                 f"(served: {', '.join(served) or 'none yet'})", param="model")
            return served[0]
        if not registry.is_known(model):
            raise NotFound(f"The model `{model}` does not exist. Valid aliases: "
                           f"{', '.join(registry.served_models())}.", param="model")
        return model

    async def _forward(self, call: tuple[str, bytes, dict[str, str]], route: RouteRequest,
                       reply: Reply, flow: tuple[str, dict[bytes, bytes]]) -> tuple[int, str]:
        tried: set[str] = set()
        last: UpstreamError | None = None
        for attempt in range(self.max_retries + 1):
            decision = self._pick(route, tried)
            if decision is None:
                decision = await self._hold(route, tried, flow)
            engine = decision.engine
            final = attempt == self.max_retries
            engine.in_flight += 1
            self.metrics.in_flight.inc((engine.id,))
            ok = False
            try:
                status = await self._attempt(engine, call, route.model, reply, final)
                ok = status < 500
                return status, engine.id
            except UpstreamError as exc:
                last = exc
                if reply.started or exc.started or isinstance(exc, UpstreamTimeout):
                    break
                self._failed(engine, exc)
                tried.add(engine.id)
            finally:
                engine.in_flight -= 1
                self.metrics.in_flight.dec((engine.id,))
                self.policy.on_complete(route, engine.id, ok)
                if self.holding is not None and self.holding.waiting:
                    self.holding.kick()  # room on this engine for a held request
        raise _client_error(last)

    def _pick(self, route: RouteRequest, tried: set[str], woken: bool = False) -> Decision | None:
        """The engine for `route`; None when the request is to be held instead."""
        engines = self.registry.candidates(route.model)
        holding = self.holding
        if holding is not None:
            if holding.waiting and not woken and not tried and holding.busy(route.model):
                return None  # others of this model are held: queue behind them
            if holding.bound is not None:
                engines = [e for e in engines if e.in_flight < holding.bound]
            if not engines:
                return None
        if tried:
            engines = [e for e in engines if e.id not in tried]
        if not engines:
            raise _unavailable(route.model)
        try:
            decision = self.policy.select(route, engines)
        except NoEngineError:
            raise _unavailable(route.model) from None
        self.metrics.decisions.inc((self.policy_kind, decision.outcome))
        return decision

    def _band(self, caller: str, headers: dict[bytes, bytes]) -> int:
        keys = self.keys
        assert self.holding is not None
        return self.holding.band(headers, keys.priority_class(caller) if keys.enabled else None, keys.enabled)

    async def _hold(self, route: RouteRequest, tried: set[str],
                    flow: tuple[str, dict[bytes, bytes]]) -> Decision:
        """Wait in the hold queue until an engine has room, then pick it (same loop step)."""
        holding = self.holding
        if holding is None:
            raise _unavailable(route.model)
        caller, headers = flow
        band = self._band(caller, headers)
        if not self.keys.enabled:  # fairness across users when there are no keys to tell tenants apart
            user = headers.get(self.session_header)
            caller = user.decode("latin-1") if user else caller
        held = await holding.wait(route.model, caller, band)
        tried.clear()  # the engines that failed before the hold may be back: they count again
        while (decision := self._pick(route, tried, woken=True)) is None:
            held = await holding.wait(route.model, caller, band, again=held)
        return decision

    def _failed(self, engine: EngineState, exc: UpstreamError) -> None:
        self.metrics.retries.inc((engine.id,))
        if isinstance(exc, UpstreamConnectError):
            self.registry.set_healthy(engine.id, False)  # health checks bring it back

    async def _attempt(self, engine: EngineState, call: tuple[str, bytes, dict[str, str]], model: str,
                       reply: Reply, final: bool) -> int:
        path, body, headers = call
        start = time.perf_counter()
        resp = await self.upstream.request(engine.id, "POST", path, body, headers=headers)
        try:
            if resp.status in _RETRY_STATUSES and not final:
                await resp.read()
                raise UpstreamError(f"engine answered {resp.status}", engine=engine.id, started=False)
            if resp.status == 200 and resp.content_type.startswith(_EVENT_STREAM):
                return await self._stream(resp, reply, (model, engine.id), start)
            data = await resp.read()
            self.metrics.ttft.observe((model, engine.id), time.perf_counter() - start)
            await reply.whole(resp.status, data, resp.headers)
            return resp.status
        finally:
            resp.release()

    async def _stream(self, resp: UpstreamResponse, reply: Reply, labels: tuple[str, str],
                      start: float) -> int:
        chunk = await resp.next_chunk()  # before any byte reaches the client: still retryable
        last = time.perf_counter()
        self.metrics.ttft.observe(labels, last - start)
        if reply.http10:  # HTTP/1.0 has no chunked framing (RFC 9112 §7.1): the whole stream at once
            parts = [chunk or b""]
            while (chunk := await resp.next_chunk()) is not None:
                parts.append(chunk)
            await reply.whole(200, b"".join(parts), resp.headers)
            return 200
        await reply.start_stream(200, resp.headers)
        itl = self.metrics.itl.child(labels)
        try:
            while chunk is not None:
                await reply.chunk(chunk)
                chunk = await resp.next_chunk()
                if chunk is not None:
                    now = time.perf_counter()
                    itl.observe(now - last)
                    last = now
        except UpstreamError as exc:
            self.metrics.stream_errors.inc((labels[1],))
            await reply.chunk(sse_error_event(f"engine failed mid-stream: {exc}"))
            await reply.end()
            return 502
        await reply.end()
        return 200


def check_content_type(value: bytes | None) -> None:
    """vLLM answers 400 to a body that is not declared `application/json` (its
    `validate_json_request`, vllm/entrypoints/serve/utils/api_utils.py): so does the router."""
    if value is None or value.split(b";", 1)[0].strip().lower() != _JSON:
        raise BadRequest("Unsupported Media Type: Only 'application/json' is allowed")


def _too_large(limit: int) -> PayloadTooLarge:
    # The rest of the body is not read, so the connection cannot carry another request: close it.
    return PayloadTooLarge(f"request body is larger than the router's limit of {limit} bytes",
                           headers=(("connection", "close"),))


def forwarded_headers(headers: dict[bytes, bytes]) -> dict[str, str]:
    """The client headers passed on to the engine, plus the body's content type."""
    out = {"content-type": "application/json"}
    for name in _FORWARDED:
        value = headers.get(name)
        if value is not None:
            out[name.decode()] = value.decode("latin-1")
    return out


def _unavailable(model: str) -> NoHealthyEngine:
    return NoHealthyEngine(f"no healthy engine serves model '{model}' right now",
                           headers=(("retry-after", "1"),))


def _client_error(exc: UpstreamError | None) -> RouterError:
    if isinstance(exc, UpstreamTimeout):
        return UpstreamTimedOut("the engine did not answer in time")
    return UpstreamFailed(f"the engine failed before answering: {exc}")
