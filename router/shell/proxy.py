"""Forwarding one OpenAI request: authenticate, validate, pick an engine, relay the answer.

`Proxy` is a raw ASGI endpoint: the app dispatches the proxied POSTs to it ahead of FastAPI's
routing and middleware, so no request object, response class or per-message `send` wrapper
sits on the hot path (figures: benchmarks/RESULTS.md, section Router).

When no engine of the model can take the request (none yet, none in rotation, all at the
per-engine bound) and holding is on, the request waits in the hold queue (`router.shell.hold`)
instead of being refused; while anything of its model is held, a newcomer queues behind it.

A failure before the client has received a byte (connection refused, the engine closing
without answering, an engine 502/503/504, a missed first-byte deadline, a non-streamed answer
cut short) is retried on another engine, up to `max_retries`. A failure mid-stream (the
connection broken, an inter-chunk deadline missed) migrates the stream: the request continues
on another engine from the text already streamed and the client's stream goes on
(`router.routing.migration`), up to `max_migrations`; when it cannot, the stream ends with one
error event and `data: [DONE]`, as vLLM ends a failed stream. Deadlines come from the settings
per model and are enforced by `router.shell.watchdog`; failures count towards passive ejection
(`router.routing.ejection`). The engine's in-flight count and the policy's `on_complete` are
kept exact on every path. A client that goes away cancels the request,
which closes the upstream connection and so stops the engine's work. On the router's own
server that is a hook the connection runs when it is lost (`router.shell.server.DisconnectHooks`);
elsewhere a watcher task reading the ASGI `receive` channel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from contracts import HEADER_REQUEST_ID, PATH_CHAT
from router.routing.base import Decision, EngineState, NoEngineError, RouteRequest, RoutingPolicy
from router.routing.ejection import Ejector
from router.routing.engines import EngineRegistry
from router.routing.migration import DONE, Splice, Streamed, continuation, engine_failure, read_stream
from router.routing.rollout import Rewrites
from router.settings import Deadlines, DeadlineSettings
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
from router.shell.tokenize import Tokenizer
from router.shell.upstream import Upstream, UpstreamResponse
from router.shell.validate import parse_body, prompt_bytes
from router.shell.watchdog import INF, WHOLE, Watch, Watchdog

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_RETRY_STATUSES = frozenset((502, 503, 504))
_EVENT_STREAM = b"text/event-stream"
KEPT_BYTES = 256 * 1024
"""What a stream keeps of the events it has sent before reading them back into a summary (the
text, a token count): about 1,500 tokens of vLLM events."""
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
                 holding: Holding | None = None, clock: Callable[[], float] = time.monotonic,
                 deadlines: DeadlineSettings | None = None, max_migrations: int = 0,
                 watchdog: Watchdog | None = None, ejector: Ejector | None = None,
                 rewrites: Rewrites | None = None, tokenizer: Tokenizer | None = None) -> None:
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
        self.deadlines = deadlines or DeadlineSettings()
        self.max_migrations = max_migrations
        self.watchdog = watchdog or Watchdog()
        self.ejector = ejector
        self.rewrites = rewrites or Rewrites({})
        self.tokenizer = tokenizer  # scoring by the engines' KV events: each prompt's token ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /v1/chat/completions, /v1/completions, /v1/embeddings."""
        reply = Reply(send, scope.get("http_version") == "1.0")
        try:
            await self._serve(scope, receive, reply)
        except RouterError as err:
            if not reply.started:
                await reply.error(err)
            else:  # mid-stream (no engine left to continue on): one error event, then the terminator
                await self._end_stream(reply, err.message, err.status)
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
        raw_session = headers.get(self.session_header)
        session = raw_session.decode("latin-1") if raw_session is not None else None
        body, rename = self._rewrite(payload, session, body)
        model = self._model(payload.get("model"))
        route = RouteRequest(model, prompt_bytes(payload), session, self.registry.is_adapter(model))
        stop_watching = _cancel_on_disconnect(scope, receive, reply)
        status, engine_id = 502, ""
        deadlines = self.deadlines.for_model(model)
        call = _Call(path, body, forwarded_headers(headers), model, payload, deadlines,
                     time.perf_counter() + deadlines.whole_s)
        call.rename = rename
        try:
            if self.tokenizer is not None:
                route = await self._tokenized(route, call)
            status, engine_id = await self._forward(call, route, reply, (caller, headers))
        except RouterError as err:
            status = err.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away (nginx's convention)
            raise
        finally:
            stop_watching()
            # a request cancelled or failed on an engine is counted against that engine (issue 22 item 9)
            self.metrics.requests.inc((model, engine_id or call.engine, str(status)))

    def _rewrite(self, payload: dict[str, Any], session: str | None,
                 body: bytes) -> tuple[bytes, tuple[bytes, bytes] | None]:
        """A request naming a rollout's stable name goes to one of its versions
        (`router.routing.rollout`): the body names the version; the answer's `model` is renamed
        back to the name the client sent (the bytes to replace, and their replacement)."""
        asked = payload.get("model")
        if not self.rewrites or not isinstance(asked, str):
            return body, None
        target = self.rewrites.target(asked, session, payload)
        if target is None:
            return body, None
        payload["model"] = target
        return orjson.dumps(payload), (_model_field(target), _model_field(asked))

    async def _tokenized(self, route: RouteRequest, call: _Call) -> RouteRequest:
        """`route` with the prompt's token ids from one of its engines (`router.shell.tokenize`;
        None when they do not come in time: the policy then scores by its own estimate) and the
        engines' KV view."""
        tokenizer = self.tokenizer
        assert tokenizer is not None
        ids, outcome = await tokenizer.token_ids(call.payload, call.path, route.model,
                                                 self.registry.candidates(route.model))
        self.metrics.kv_tokenize.inc((outcome,))
        return dataclasses.replace(route, token_ids=ids, kv=self.registry.kv)

    def _model(self, model: str | None) -> str:
        """The model a request is for: as named, or the one model served when it names none
        (vLLM accepts a request without `model` and serves it with its model)."""
        registry = self.registry
        if not model:
            served = registry.base_models()  # vLLM serves a request naming no model with its base model
            if len(served) != 1:
                raise BadRequest("'model' is required when this router serves several models "
                                 f"(served: {', '.join(served) or 'none yet'})", param="model")
            return served[0]
        if not registry.is_known(model):
            raise NotFound(f"The model `{model}` does not exist. Valid aliases: "
                           f"{', '.join(registry.served_models())}.", param="model")
        return model

    async def _forward(self, call: _Call, route: RouteRequest, reply: Reply,
                       flow: tuple[str, dict[bytes, bytes]]) -> tuple[int, str]:
        """Send the request to engines until one answers it: before the client has a byte, a
        failed engine is replaced (up to `max_retries`); after it, the stream migrates (up to
        `max_migrations`). Returns the status and the engine that answered."""
        tried: set[str] = set()
        last: UpstreamError | None = None
        retries = 0
        while True:
            decision = self._pick(route, tried, again=reply.started) or await self._hold(route, tried, flow)
            engine = decision.engine
            try:
                final = retries >= self.max_retries
                return await self._on_engine(engine, call, route, reply, final), engine.id
            except UpstreamError as exc:
                last = exc
                self._failed(engine, exc, route.model)
                tried.add(engine.id)
            if isinstance(last, UpstreamTimeout) and last.deadline == WHOLE:
                break  # the answer's time is up: nothing to retry or migrate into
            if not reply.started:
                if retries >= self.max_retries:
                    break
                retries += 1
                continue
            ended = await self._migrate(call, route.model, reply, last)
            if ended is not None:
                return ended, engine.id
        if reply.started:  # a stream whose time ran out
            await self._end_stream(reply, "the answer was not complete within its deadline", 504)
            return 504, last.engine if last is not None else ""
        raise _client_error(last)

    async def _on_engine(self, engine: EngineState, call: _Call, route: RouteRequest, reply: Reply,
                         final: bool) -> int:
        """One attempt, with the engine's in-flight count and the policy's bookkeeping exact."""
        call.engine = engine.id
        engine.in_flight += 1
        self.metrics.in_flight.inc((engine.id,))
        ok = False
        try:
            status = await self._attempt(engine, call, reply, final)
            ok = status < 500
            if call.migrations:
                self.metrics.migrations.inc((route.model, "completed" if ok else "failed"))
            return status
        finally:
            engine.in_flight -= 1
            self.metrics.in_flight.dec((engine.id,))
            self.policy.on_complete(route, engine.id, ok)
            if self.holding is not None and self.holding.waiting:
                self.holding.kick()  # room on this engine for a held request

    async def _migrate(self, call: _Call, model: str, reply: Reply, exc: UpstreamError) -> int | None:
        """Prepare the stream's continuation on another engine (None); or end the stream and
        return its status: 200 when the client already had the whole answer, 502 after one
        clean error event."""
        relay = call.relay
        assert relay is not None
        seen = relay.seen(call.chat)
        if seen.done or seen.error:  # the engine had ended the stream itself
            if not reply.done:
                await reply.end()
            return 200 if seen.done and not seen.error else 502
        if seen.finished:  # only the terminator (and any usage event) was lost
            await reply.chunk(DONE)
            await reply.end()
            return 200
        self.metrics.stream_errors.inc((exc.engine,))
        log.warning("stream of %s broke on engine %s after %d tokens: %s", call.model, exc.engine,
                    seen.tokens, exc)
        if call.migrations >= self.max_migrations:
            self.metrics.migrations.inc((model, "exhausted"))
            await self._end_stream(reply, f"the engine serving this stream failed and the stream had moved "
                                          f"{call.migrations} times already (limits.max_migrations)", 502)
            return 502
        body = continuation(call.payload, call.chat, seen)
        if isinstance(body, str):
            self.metrics.migrations.inc((model, "unsupported"))
            await self._end_stream(reply, f"the engine serving this stream failed and this request cannot "
                                          f"continue on another engine ({body})", 502)
            return 502
        call.migrations += 1
        call.body = orjson.dumps(body)
        relay.splice = Splice(seen, call.chat)
        return None

    @staticmethod
    async def _end_stream(reply: Reply, message: str, status: int) -> None:
        """One error event and the terminator, as vLLM ends a stream that failed
        (`chat_completion_stream_generator`, vllm/entrypoints/openai/chat_completion/serving.py)."""
        if not reply.done:
            await reply.chunk(sse_error_event(message, status) + DONE)
            await reply.end()

    def _pick(self, route: RouteRequest, tried: set[str], woken: bool = False,
              again: bool = False) -> Decision | None:
        """The engine for `route`; None when the request is to be held instead. `again`: a
        stream's continuation, which goes back to an engine already tried when no other is left
        (the client cannot retry a stream it has half received; a hung engine is ejected after
        its repeated misses)."""
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
            untried = [e for e in engines if e.id not in tried]
            engines = untried if untried or not again else engines
        if not engines:
            raise _unavailable(route.model)
        if route.kv is not None:  # the feeds' trust is judged at this instant
            route = dataclasses.replace(route, now=self.clock())
        try:
            decision = self.policy.select(route, engines)
        except NoEngineError:
            raise _unavailable(route.model) from None
        self.metrics.decisions.inc((self.policy_kind, decision.outcome))
        self.metrics.count_prediction(decision)
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

    def _failed(self, engine: EngineState, exc: UpstreamError, model: str) -> None:
        """Count a failed attempt against its engine: retried, a deadline missed, ejected after
        repeated failures (passive ejection; the active health checks bring it back)."""
        self.metrics.retries.inc((engine.id,))
        if isinstance(exc, UpstreamTimeout) and exc.deadline:
            self.metrics.deadline_misses.inc((engine.id, exc.deadline))
        if isinstance(exc, UpstreamConnectError):
            self.registry.set_healthy(engine.id, False)  # health checks bring it back
            return
        ejector = self.ejector
        if ejector is None or not engine.healthy:
            return
        members = self.registry.members(model)
        out = members - len(self.registry.candidates(model))
        if ejector.record(engine.id, self.clock(), members=members, out=out):
            self.registry.set_healthy(engine.id, False)
            reason = exc.deadline if isinstance(exc, UpstreamTimeout) and exc.deadline else "broken"
            self.metrics.ejections.inc((engine.id, reason))
            log.warning("engine %s ejected after repeated failed requests (last: %s)", engine.id, exc)

    async def _attempt(self, engine: EngineState, call: _Call, reply: Reply, final: bool) -> int:
        deadlines = call.deadlines
        watch = self.watchdog.watch(deadlines.first_byte_s if call.stream else deadlines.whole_s, call.whole)
        try:
            return await self._exchange(engine, call, reply, final, watch)
        except asyncio.CancelledError:
            missed = watch.missed
            task = asyncio.current_task()
            if missed is None or task is None or task.uncancel() > 0:
                raise  # the client went away (or both): not a deadline
            raise UpstreamTimeout(f"no answer within the {missed.replace('_', '-')} deadline",
                                  engine=engine.id, started=reply.started, deadline=missed) from None
        finally:
            self.watchdog.unwatch(watch)

    async def _exchange(self, engine: EngineState, call: _Call, reply: Reply, final: bool,
                        watch: Watch) -> int:
        start = time.perf_counter()
        resp = await self.upstream.request(engine.id, "POST", call.path, call.body, headers=call.headers)
        try:
            if reply.started:  # a continuation: only a stream can carry the client's stream on
                if resp.status != 200 or not resp.content_type.startswith(_EVENT_STREAM):
                    await resp.read()
                    raise UpstreamError(f"engine answered {resp.status} to the continuation",
                                        engine=engine.id, started=False)
                return await self._stream(resp, reply, call, (call.model, engine.id), watch,
                                          await resp.next_chunk())
            if resp.status in _RETRY_STATUSES and not final:
                await resp.read()
                raise UpstreamError(f"engine answered {resp.status}", engine=engine.id, started=False)
            if resp.status == 200 and resp.content_type.startswith(_EVENT_STREAM):
                chunk = await resp.next_chunk()  # before any byte reaches the client: still retryable
                self.metrics.ttft.observe((call.model, engine.id), time.perf_counter() - start)
                if reply.http10:  # no chunked framing in HTTP/1.0 (RFC 9112 §7.1): the whole stream at once
                    return await self._whole_stream(resp, reply, chunk, call)
                await reply.start_stream(200, resp.headers)
                call.relay = _Relay()
                return await self._stream(resp, reply, call, (call.model, engine.id), watch, chunk)
            data = call.renamed(await resp.read())
            self.metrics.ttft.observe((call.model, engine.id), time.perf_counter() - start)
            await reply.whole(resp.status, data, resp.headers)
            return resp.status
        finally:
            resp.release()

    @staticmethod
    async def _whole_stream(resp: UpstreamResponse, reply: Reply, chunk: bytes | None, call: _Call) -> int:
        parts = [chunk or b""]
        while (chunk := await resp.next_chunk()) is not None:
            parts.append(chunk)
        await reply.whole(200, call.renamed(b"".join(parts)), resp.headers)
        return 200

    async def _stream(self, resp: UpstreamResponse, reply: Reply, call: _Call, labels: tuple[str, str],
                      watch: Watch, chunk: bytes | None) -> int:
        """Relay the stream's events to the client as they arrive, complete events only (an
        event cut by the network waits for its end), keeping what was sent for a migration."""
        relay = call.relay
        assert relay is not None
        inter = call.deadlines.inter_chunk_s
        last = time.perf_counter()
        itl = self.metrics.itl.child(labels)
        sent = relay.sent
        splice = relay.splice
        while chunk is not None:
            watch.due = INF  # writing to the client: its pace is not the engine's
            if splice is not None:
                chunk = splice.feed(chunk)
            elif relay.pending or chunk[-2:] != b"\n\n":
                chunk = relay.frame(chunk)
            if chunk:
                chunk = call.renamed(chunk)
                cut = engine_failure(chunk) if b'"error"' in chunk or b'"abort"' in chunk else None
                if cut is not None:
                    await self._relay_until_failure(reply, sent, chunk[:cut])
                    raise UpstreamError("the engine failed the request mid-stream", engine=labels[1],
                                        started=True)
                sent.append(chunk)
                relay.size += len(chunk)
                if relay.size > KEPT_BYTES:
                    relay.compact(call.chat)
                    sent = relay.sent
                await reply.chunk(chunk)
            watch.heard(time.perf_counter(), inter)
            chunk = await resp.next_chunk()
            if chunk is not None:
                now = time.perf_counter()
                itl.observe(now - last)
                last = now
        if relay.pending:  # the engine ended inside an event: pass on what it sent
            await reply.chunk(call.renamed(relay.pending))
        await reply.end()
        return 200


    @staticmethod
    async def _relay_until_failure(reply: Reply, sent: list[bytes], head: bytes) -> None:
        """The events before an engine's own failure event go to the client; the failure does not
        (the stream migrates, or ends with the router's error event)."""
        if head:
            sent.append(head)
            await reply.chunk(head)


class _Call:
    """One proxied request, as it goes from engine to engine."""

    __slots__ = ("path", "body", "headers", "model", "payload", "chat", "stream", "deadlines", "whole",
                 "relay", "migrations", "engine", "rename")

    def __init__(self, path: str, body: bytes, headers: dict[str, str], model: str,
                 payload: dict[str, Any], deadlines: Deadlines, whole: float) -> None:
        self.path, self.body, self.headers, self.model, self.payload = path, body, headers, model, payload
        self.chat = path == PATH_CHAT
        self.stream = payload.get("stream") is True
        self.deadlines = deadlines
        self.whole = whole
        self.relay: _Relay | None = None
        self.migrations = 0
        self.engine = ""  # the engine of the latest attempt
        self.rename: tuple[bytes, bytes] | None = None  # a rollout's version -> the name the client sent

    def renamed(self, data: bytes) -> bytes:
        """`data` with the answer's `"model":"<version>"` as the client's stable name (vLLM writes
        its JSON compact: pydantic's `model_dump_json`, starlette's `separators=(",", ":")`; a
        quote inside a string is escaped, so the pattern only ever matches the field itself)."""
        rename = self.rename
        return data.replace(*rename) if rename is not None else data


class _Relay:
    """What a stream has sent its client (complete events), and how later engines' events are
    spliced on."""

    __slots__ = ("sent", "size", "summary", "pending", "splice")

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.size = 0  # bytes in `sent`
        self.summary: Streamed | None = None  # what was sent before `sent`, read back
        self.pending = b""
        self.splice: Splice | None = None

    def compact(self, chat: bool) -> None:
        """Read back what `sent` holds into `summary` and let the bytes go: a long stream keeps
        its text, not every event's JSON (about 40 × smaller)."""
        self.summary = read_stream(b"".join(self.sent), chat, self.summary)
        self.sent = []
        self.size = 0

    def seen(self, chat: bool) -> Streamed:
        """What the client has received of the stream."""
        summary = dataclasses.replace(self.summary) if self.summary is not None else None
        return read_stream(b"".join(self.sent), chat, summary)

    def frame(self, chunk: bytes) -> bytes:
        """The complete events of `pending + chunk`; the incomplete rest stays pending."""
        data = self.pending + chunk
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self.pending = data
            return b""
        self.pending = data[cut + 2:]
        return data[:cut + 2]


def _model_field(name: str) -> bytes:
    """`"model":"<name>"` as a compact JSON encoder writes it."""
    return b'"model":' + orjson.dumps(name)


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
