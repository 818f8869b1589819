"""The router application: a FastAPI app owning the live engine state and its background work.

`create_app(settings, *, upstream=None, policy=None, environ=None, metrics_dir=None)` builds a
`RouterApp` (a `FastAPI`). Its lifespan starts discovery, health checks and engine-metric
scraping as supervised asyncio tasks (`router.shell.supervisor`) and, on shutdown, cancels them and
closes the upstream pool; `async with app:` does the same outside a server (tests).
`await app.serve(host, port)` listens on uvicorn (`router.shell.server`) inside the running loop.

The proxied POSTs go to a raw ASGI endpoint (`router.shell.proxy.Proxy`) ahead of FastAPI's routing
and middleware; the router's own endpoints (`/health`, `/metrics`, `/v1/models`) are ordinary
FastAPI routes. The OpenAPI schema documents all of them (`router.shell.openapi`), and every error,
FastAPI's own included, is answered in the OpenAI JSON shape. No globals, no threads.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from contracts import PATH_HEALTH, PATH_METRICS, PATH_MODELS, PROXIED_PATHS
from contracts.kv_events import FEED_LIVE, FEED_SYNCING, KV_SCORING_EVENTS
from router.routing.base import RoutingPolicy
from router.routing.ejection import Ejector
from router.routing.engines import EngineRegistry, EngineSpec
from router.routing.rollout import Rewrites
from router.settings import RouterSettings
from router.shell import openapi
from router.shell.auth import load_keys
from router.shell.discovery.file import FileWatcher
from router.shell.discovery.kubernetes import KubernetesWatcher
from router.shell.discovery.static import static_specs
from router.shell.engine_metrics import MetricsScraper
from router.shell.errors import BadRequest, RouterError, error_body
from router.shell.health import HealthChecker
from router.shell.hold import Holding
from router.shell.kv_events import Endpoints, KvEventsSubscriber
from router.shell.metrics import CONTENT_TYPE, RouterMetrics
from router.shell.proxy import Proxy
from router.shell.ratelimit import RateLimiter
from router.shell.schemas import ErrorResponse, Health, ModelCard, ModelList, ModelPermission
from router.shell.server import Listener, listen_socket
from router.shell.supervisor import Supervisor
from router.shell.tokenize import Tokenizer
from router.shell.upstream import Upstream, UpstreamPool
from router.shell.vllm_routes import add_vllm_routes
from router.shell.watchdog import Watchdog


class RouterApp(FastAPI):
    """One router process's application; see the module docstring for its lifecycle."""

    def __init__(self, settings: RouterSettings, *, upstream: Upstream, policy: RoutingPolicy,
                 environ: Mapping[str, str], metrics_dir: str | None = None,
                 kv_endpoints: Callable[[str], Endpoints] | None = None) -> None:
        super().__init__(title="LLM Stack router", version="1", lifespan=_lifespan, docs_url=None,
                         redoc_url=None)
        self.settings = settings
        self.upstream = upstream
        self.policy = policy
        self.environ = environ
        self.metrics = RouterMetrics(metrics_dir)
        self.registry = EngineRegistry(default_models=settings.models, adapters=settings.adapters,
                                       on_change=policy.on_engines_changed)
        limits = settings.limits
        limiter = (RateLimiter(rate=limits.rate_limit_rps, burst=limits.rate_limit_burst)
                   if limits.rate_limit_rps else None)
        self.holding = Holding(settings.queue, self.registry, self.metrics) if settings.queue.holds else None
        self.watchdog = Watchdog()
        ejector = Ejector(settings.ejection) if settings.ejection.failures else None
        self.rewrites = Rewrites(settings.rollouts)
        kv = settings.kv_events
        tokenizer = Tokenizer(upstream, kv.tokenize_timeout_s) if kv.by_events else None
        self.proxy = Proxy(registry=self.registry, policy=policy, upstream=upstream, metrics=self.metrics,
                           keys=load_keys(settings, environ), limiter=limiter,
                           session_header=settings.session_header.lower(), max_retries=limits.max_retries,
                           policy_kind=getattr(policy, "kind", settings.policy.kind),
                           max_body_bytes=limits.max_body_bytes, holding=self.holding,
                           deadlines=settings.deadlines, max_migrations=limits.max_migrations,
                           watchdog=self.watchdog, ejector=ejector, rewrites=self.rewrites,
                           tokenizer=tokenizer)
        self.health = HealthChecker(self.registry, upstream, settings.health, ejector)
        self.scraper = MetricsScraper(self.registry, upstream, interval_s=settings.health.metrics_interval_s,
                                      timeout_s=settings.health.timeout_s)
        self.supervisor = Supervisor(on_restart=lambda name: self.metrics.task_restarts.inc((name,)))
        self.kv_events = (KvEventsSubscriber(kv, self.registry, self.supervisor, endpoints=kv_endpoints)
                          if kv.enabled else None)
        self.cold_join = ColdJoin(kv.cold_join_s) if kv.by_events else None
        self.created = int(time.time())  # the model cards' `created`
        self.draining = False
        self.open_requests = 0  # HTTP requests being answered (drain waits for them)
        self._started = False
        self._listeners: list[Listener] = []
        self._proxied = frozenset(PROXIED_PATHS)
        _routes(self)
        add_vllm_routes(self)
        _error_handlers(self)
        self.openapi = lambda: openapi.schema(self)  # type: ignore[method-assign]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The proxied POSTs go straight to the proxy; everything else through FastAPI. Open
        HTTP requests are counted, whichever engine (even one discovery has since removed)
        serves them, so a drain waits for every one."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        self.open_requests += 1
        try:
            if scope["method"] == "POST" and scope["path"] in self._proxied:
                await self.proxy(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            self.open_requests -= 1

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Load the engines and launch the supervised background tasks (idempotent)."""
        if self._started:
            return
        self._started = True
        if self.cold_join is not None and self.kv_events is not None:
            self.cold_join.start(self.kv_events.clock())
        sup = self.supervisor
        sup.spawn("health", self.health.run)
        sup.spawn("deadlines", self.watchdog.run)
        sup.spawn("metrics_scrape", self.scraper.run)
        s = self.settings
        if s.file_discovery is not None:
            files = FileWatcher(s.file_discovery, self.apply_engines, default_gpu=s.default_gpu_cache_tokens,
                                default_cpu=s.default_cpu_cache_tokens)
            sup.spawn("discovery", files.run)
        elif s.discovery is None:
            self.apply_engines(static_specs(self.settings))
        else:
            watcher = KubernetesWatcher(s.discovery, self.apply_engines,
                                        default_gpu=s.default_gpu_cache_tokens,
                                        default_cpu=s.default_cpu_cache_tokens, environ=self.environ)
            sup.spawn("discovery", watcher.run)

    async def drain(self, timeout: float) -> bool:
        """Stop accepting connections and keep serving the open requests (streams included, and
        new requests on connections already open) until none is left or `timeout` s pass, so a
        terminating pod does not cut streams short (held requests are open requests too: they still
        go to an engine that comes, or are answered 503 at `stop`); /health answers 503 meanwhile.
        True when every request finished. (In a cluster the pod's preStop delay has already let the
        endpoints and the load balancer stop sending new connections.)"""
        self.draining = True
        for listener in self._listeners:
            listener.stop_accepting()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.open_requests and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return not self.open_requests

    async def stop(self) -> None:
        """Stop listening, cancel the background tasks, close upstream connections."""
        listeners, self._listeners = self._listeners, []
        if self.holding is not None:
            self.holding.close()  # answer what is still held before the connections close
        for listener in listeners:
            await listener.stop()
        if self._started:
            self._started = False
            await self.supervisor.stop()
            if self.kv_events is not None:
                self.kv_events.close()
            await self.upstream.close()

    async def __aenter__(self) -> RouterApp:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def serve(self, host: str | None = None, port: int | None = None, *,
                    reuse_port: bool = False, graceful_s: float = 5.0) -> int:
        """Listen on uvicorn (the settings' host/port unless given; port 0 picks one); returns
        the port. Runs the app's lifespan unless the app is already started."""
        sock = listen_socket(host if host is not None else self.settings.host,
                             port if port is not None else self.settings.port, reuse_port=reuse_port)
        listener = Listener(self, sock, lifespan="off" if self._started else "on", graceful_s=graceful_s)
        await listener.start()
        self._listeners.append(listener)
        return listener.port

    def apply_engines(self, specs: list[EngineSpec]) -> None:
        """Make the engine set exactly `specs` (discovery calls this); with KV events on, every
        engine's subscription follows."""
        _, removed = self.registry.replace(specs)
        if self.kv_events is not None and self._started:
            self.kv_events.apply(self.registry.states)
        drop = getattr(self.upstream, "drop", None)
        for url in removed:
            if drop is not None:
                drop(url)

    # --- the router's own answers -------------------------------------------------------
    def held(self) -> int:
        """Requests this process holds for want of an engine."""
        return self.holding.waiting if self.holding is not None else 0

    def health_report(self) -> tuple[int, Health]:
        """Ready when this router can accept requests and hold them: with the hold queue on,
        whether or not an engine exists yet (a model scaled to zero wakes on held requests,
        which need a ready router to reach); without it, when an engine is in rotation. Scoring
        by KV events, a router that has just started is not ready (`warming`) while an engine's
        feed is still reading its replay buffer, for at most `kv_events.cold_join_s`
        (`ColdJoin`)."""
        healthy = self.registry.healthy_count()
        down = self.supervisor.down()
        critical = self.supervisor.critical_down()
        kv = self.kv_events
        feeds = kv.states() if kv is not None else None
        warming = self.cold_join is not None and kv is not None and self.cold_join.warming(
            (feeds or {}).values(), kv.clock())
        ok = (healthy > 0 or self.holding is not None) and not self.draining and not critical and not warming
        status: Literal["ok", "draining", "unavailable", "degraded", "warming"] = (
            "ok" if ok else "draining" if self.draining else "degraded" if critical and healthy
            else "warming" if warming and (healthy > 0 or self.holding is not None) else "unavailable")
        body = Health(status=status, healthy_engines=healthy, engines=len(self.registry.states),
                      held_requests=self.held(), pid=os.getpid(), tasks_down=down,
                      task_restarts=dict(self.supervisor.restarts), kv_events=feeds,
                      kv_scoring=scored_by(feeds) if self.cold_join is not None and feeds else None)
        return (200 if ok else 503), body


class ColdJoin:
    """The readiness gate of a router scoring by KV events (pure; the app passes the clock).

    From `start`, the router is `warming` while any engine's feed is `syncing` (reading its
    replay buffer, so the router's index is not yet the engine's cache), for at most `bound_s`.
    The gate opens for good once every engine discovered has left `syncing`, or `bound_s` has
    passed: an engine discovered later (a scale-up, or the first engine of a model scaled to
    zero) never takes a ready router out of rotation. With no engine yet the router is ready
    (issue 18: a model scaled to zero wakes on requests held by a ready router), and the gate
    stays armed until `bound_s`, so an engine that discovery finds a moment after start is still
    waited for. `bound_s` 0: never warming."""

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self._started: float | None = None
        self._open = bound_s <= 0

    def start(self, now: float) -> None:
        if self._started is None:
            self._started = now

    def warming(self, feeds: Iterable[str], now: float) -> bool:
        """Whether the router is still warming at `now`, its engines' feeds in `feeds` (states)."""
        if self._open:
            return False
        if self._started is None or now - self._started >= self.bound_s:
            self._open = self._started is not None
            return False
        states = list(feeds)
        if FEED_SYNCING in states:
            return True
        self._open = bool(states)
        return False


def scored_by(feeds: Mapping[str, str]) -> dict[str, str]:
    """How each engine is scored now: `events`, or the reason it falls back to the router's
    estimate (its feed's state: `contracts.kv_events.FALLBACK_REASONS`)."""
    return {url: KV_SCORING_EVENTS if state == FEED_LIVE else state for url, state in feeds.items()}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    assert isinstance(app, RouterApp)
    await app.start()
    try:
        yield
    finally:
        await app.stop()


def _routes(app: RouterApp) -> None:
    for path in PROXIED_PATHS:  # reached only when the app is mounted under another one; else 405s
        app.router.routes.append(Route(path, app.proxy, methods=["POST"], include_in_schema=False))

    @app.get(PATH_HEALTH, response_model=Health,
             summary="Router readiness: 200 when it can accept requests (and hold them until an engine "
                     "can take them).",
             responses={503: {"model": Health, "description": "Draining, a background task restarting, "
                                                              "no healthy engine with holding off, or "
                                                              "(scoring by KV events) warming: an engine's "
                                                              "replay buffer still being read."}})
    async def health() -> JSONResponse:
        status, body = app.health_report()
        return JSONResponse(body.model_dump(), status_code=status)

    @app.get(PATH_METRICS, summary="Prometheus metrics (every worker's series).",
             response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
    async def metrics() -> Response:
        kv = app.kv_events
        feeds, now = (kv.view.feeds, kv.clock()) if kv is not None else (None, None)
        text = app.metrics.render(app.registry.states.values(), app.scraper.loads, feeds, now)
        return Response(text, media_type=CONTENT_TYPE)

    @app.get(PATH_MODELS, response_model=ModelList,
             summary="The models served here (configured or reported by an engine), engines up or not.",
             responses={401: {"model": ErrorResponse}})
    async def models(request: Request) -> dict[str, Any]:
        if app.proxy.keys.enabled:
            app.proxy.keys.check(request.headers.get("authorization"))
        return {"object": "list", "data": model_cards(app.registry, app.rewrites, app.created)}


def model_cards(registry: EngineRegistry, rewrites: Rewrites, created: int) -> list[dict[str, Any]]:
    """`/v1/models`: the served models and adapters, each rollout under its stable name (with
    `parent` its base model) and not its versions: a client names the stable name, and versions
    come and go with rollouts (a request naming a version is still served)."""
    cards = registry.cards
    data = [model_card(m, cards.get(m, {}), created, registry.parent(m))
            for m in registry.served_models() if not rewrites.is_version(m)]
    for name in rewrites.names():
        first = next(iter(rewrites.versions(name)))
        learned = {"max_model_len": cards.get(first, {}).get("max_model_len")}
        data.append(model_card(name, learned, created, registry.parent(first)))
    return sorted(data, key=lambda card: card["id"])


def model_card(model: str, learned: Mapping[str, Any], created: int,
               parent: str | None = None) -> dict[str, Any]:
    """A `/v1/models` entry as vLLM 0.33 writes one: `ModelCard` with one `ModelPermission`
    (vllm/entrypoints/openai/models/serving.py), `root` / `parent` / `max_model_len` as the
    engines report them (`root` defaults to the id, as for a model served under its path;
    `parent` to `parent`, the configured base model of an adapter no engine has listed yet)."""
    card = ModelCard(id=model, created=created, root=learned.get("root", model),
                     parent=learned.get("parent", parent),
                     max_model_len=learned.get("max_model_len"),
                     permission=[ModelPermission(id=f"modelperm-{model}", created=created)])
    return card.model_dump()


def _error_json(status: int, message: str, param: str | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
    return Response(error_body(message, status, param), status_code=status, media_type="application/json",
                    headers=dict(headers or {}))


def _error_handlers(app: RouterApp) -> None:
    async def router_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RouterError)
        return _error_json(exc.status, exc.message, exc.param, dict(exc.headers))

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        return _error_json(status, str(exc.detail), headers=exc.headers)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        err = BadRequest(f"invalid request: {where}: {first.get('msg', 'invalid')}", param=where or None)
        return _error_json(err.status, err.message, err.param)

    async def internal_error(_: Request, exc: Exception) -> Response:
        return _error_json(500, f"internal router error ({type(exc).__name__})")

    app.add_exception_handler(RouterError, router_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)


def create_app(settings: RouterSettings, *, upstream: Upstream | None = None,
               policy: RoutingPolicy | None = None, environ: Mapping[str, str] | None = None,
               metrics_dir: str | None = None,
               kv_endpoints: Callable[[str], Endpoints] | None = None) -> RouterApp:
    """Build the app; `upstream` defaults to an aiohttp `UpstreamPool`, `policy` to the
    settings' policy from the registry, `environ` (API keys, in-cluster API) to `os.environ`,
    `metrics_dir` (the workers' shared prometheus-client directory) to one process,
    `kv_endpoints` (an engine URL's KV-event sockets) to the engine's host on the settings' ports."""
    if upstream is None:
        limits = settings.limits
        upstream = UpstreamPool(connect_timeout=limits.upstream_connect_timeout_s, read_timeout=None)
    if policy is None:
        from router.routing.policies.registry import build_policy  # the policy registry

        policy = build_policy(settings.policy)
    return RouterApp(settings, upstream=upstream, policy=policy,
                     environ=os.environ if environ is None else environ, metrics_dir=metrics_dir,
                     kv_endpoints=kv_endpoints)
