"""Forwarding one OpenAI request: authenticate, validate, pick an engine, relay the answer.

A failure before the client has received a byte (connection refused, the engine closing
without answering, an engine 503) is retried on another engine, up to `max_retries`. A
failure mid-stream ends the stream with an SSE error event and is counted. The engine's
in-flight count and the policy's `on_complete` are kept exact on every path, including a
client that disconnects (its handler task is cancelled, which closes the upstream
connection and so stops the engine's work).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from router.auth import ApiKeys
from router.contracts import HEADER_REQUEST_ID
from router.engines import EngineRegistry
from router.errors import (
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
    sse_error_event,
)
from router.http_server import Request, Responder
from router.metrics import RouterMetrics
from router.policies.base import Decision, EngineState, NoEngineError, RouteRequest, RoutingPolicy
from router.ratelimit import RateLimiter
from router.upstream import Upstream, UpstreamResponse
from router.validate import parse_body, prompt_bytes

_RETRY_STATUSES = frozenset((502, 503, 504))
_EVENT_STREAM = b"text/event-stream"


class Proxy:
    """The proxied routes' handler; everything it uses is injected."""

    def __init__(self, *, registry: EngineRegistry, policy: RoutingPolicy, upstream: Upstream,
                 metrics: RouterMetrics, keys: ApiKeys, limiter: RateLimiter | None,
                 session_header: str, max_retries: int, policy_kind: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.policy = policy
        self.upstream = upstream
        self.metrics = metrics
        self.keys = keys
        self.limiter = limiter
        self.session_header = session_header
        self.max_retries = max_retries
        self.policy_kind = policy_kind
        self.clock = clock

    def authorize(self, request: Request) -> str:
        """The caller's identity; raises 401 / 429."""
        keys = self.keys
        caller = keys.check(request.headers.get("authorization")) if keys.enabled else request.client
        if self.limiter is not None:
            wait = self.limiter.acquire(caller, self.clock())
            if wait > 0:
                retry_after = str(max(1, int(wait + 0.999)))
                raise RateLimited("rate limit exceeded; retry later", headers=(("retry-after", retry_after),))
        return caller

    async def handle(self, request: Request, responder: Responder) -> None:
        """POST /v1/chat/completions, /v1/completions, /v1/embeddings."""
        self.authorize(request)
        body = request.body
        if body is None:
            raise PayloadTooLarge("request body is larger than the router's limit")
        payload = parse_body(body, request.path)
        model = payload["model"]
        if not self.registry.is_known(model):
            raise NotFound(f"model '{model}' is not served here; see GET /v1/models")
        route = RouteRequest(model, prompt_bytes(payload), request.headers.get(self.session_header))
        status = 502
        engine_id = ""
        try:
            status, engine_id = await self._forward(request.path, body, route, responder,
                                                    forwarded_headers(request.headers))
        except RouterError as err:
            status = err.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away (nginx's convention)
            raise
        finally:
            self.metrics.requests.inc((model, engine_id, str(status)))

    async def _forward(self, path: str, body: bytes, route: RouteRequest,
                       responder: Responder, headers: bytes) -> tuple[int, str]:
        tried: set[str] = set()
        last: UpstreamError | None = None
        for attempt in range(self.max_retries + 1):
            engine = self._pick(route, tried).engine
            final = attempt == self.max_retries
            engine.in_flight += 1
            ok = False
            try:
                status = await self._attempt(engine, (path, body, headers), route.model, responder, final)
                ok = status < 500
                return status, engine.id
            except UpstreamError as exc:
                last = exc
                if responder.started or exc.started or isinstance(exc, UpstreamTimeout):
                    break
                self._failed(engine, exc)
                tried.add(engine.id)
            finally:
                engine.in_flight -= 1
                self.policy.on_complete(route, engine.id, ok)
        raise _client_error(last)

    def _pick(self, route: RouteRequest, tried: set[str]) -> Decision:
        engines = self.registry.candidates(route.model)
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

    def _failed(self, engine: EngineState, exc: UpstreamError) -> None:
        self.metrics.retries.inc((engine.id,))
        if isinstance(exc, UpstreamConnectError):
            self.registry.set_healthy(engine.id, False)  # health checks bring it back

    async def _attempt(self, engine: EngineState, call: tuple[str, bytes, bytes], model: str,
                       responder: Responder, final: bool) -> int:
        path, body, headers = call
        start = time.perf_counter()
        resp = await self.upstream.request(engine.id, "POST", path, body, headers=headers)
        try:
            if resp.status in _RETRY_STATUSES and not final:
                await resp.read()
                raise UpstreamError(f"engine answered {resp.status}", engine=engine.id, started=False)
            if resp.status == 200 and resp.content_type.startswith(_EVENT_STREAM):
                return await self._stream(resp, responder, (model, engine.id), start)
            data = await resp.read()
            self.metrics.ttft.observe((model, engine.id), time.perf_counter() - start)
            responder.send(resp.status, data, resp.content_type or b"application/json")
            return resp.status
        finally:
            resp.release()

    async def _stream(self, resp: UpstreamResponse, responder: Responder, labels: tuple[str, str],
                      start: float) -> int:
        chunk = await resp.next_chunk()  # before any byte reaches the client: still retryable
        now = time.perf_counter()
        self.metrics.ttft.observe(labels, now - start)
        responder.start_stream(200, resp.content_type)
        try:
            if chunk is not None:
                responder.push(chunk)
                resp.pipe(_Relay(resp, responder, self.metrics, labels, now))
                await resp.piped()
        except UpstreamError as exc:
            self.metrics.stream_errors.inc((labels[1],))
            await responder.write(sse_error_event(f"engine failed mid-stream: {exc}"))
            responder.end_stream()
            return 502
        responder.end_stream()
        return 200


class _Relay:
    """The streaming fast path: called by the engine connection for every network read, it
    writes the bytes to the client at once and records the inter-chunk time; when the client
    reads slower than the engine writes, it pauses the engine socket until the client drains."""

    __slots__ = ("resp", "responder", "itl", "labels", "last")

    def __init__(self, resp: UpstreamResponse, responder: Responder, metrics: RouterMetrics,
                 labels: tuple[str, str], last: float) -> None:
        self.resp = resp
        self.responder = responder
        self.itl = metrics.itl
        self.labels = labels
        self.last = last

    def __call__(self, data: bytes) -> None:
        now = time.perf_counter()
        self.itl.observe(self.labels, now - self.last)
        self.last = now
        responder = self.responder
        responder.push(data)
        if responder.paused:
            self.resp.pause_reading()
            responder.on_resume(self.resp.resume_reading)


# Client headers passed on to the engine: request correlation (vLLM logs and echoes
# x-request-id) and W3C trace context. Everything else stays at the router.
FORWARDED_HEADERS = (HEADER_REQUEST_ID, "traceparent", "tracestate")


def forwarded_headers(headers: Mapping[str, str]) -> bytes:
    """The forwarded headers as raw header lines (httptools has already refused CR/LF in values)."""
    return b"".join(
        f"{name}: {headers[name]}\r\n".encode("latin-1", "replace")
        for name in FORWARDED_HEADERS if name in headers
    )


def _unavailable(model: str) -> NoHealthyEngine:
    return NoHealthyEngine(f"no healthy engine serves model '{model}' right now",
                           headers=(("retry-after", "1"),))


def _client_error(exc: UpstreamError | None) -> RouterError:
    if isinstance(exc, UpstreamTimeout):
        return UpstreamTimedOut("the engine did not answer in time")
    return UpstreamFailed(f"the engine failed before answering: {exc}")
