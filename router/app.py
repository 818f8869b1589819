"""The router application: routes, live engine state, and the background work it owns.

`create_app(settings, *, upstream=None, policy=None)` builds a `RouterApp`; nothing runs
until it is started (`async with app:` or `await app.start()`), which launches discovery,
health checks and engine-metric scraping as asyncio tasks; `stop()` cancels them and closes
the upstream pool. `await app.serve(host, port)` starts listening. No globals, no threads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Mapping
from typing import Any

import orjson

from router.auth import load_keys
from router.contracts import PATH_HEALTH, PATH_METRICS, PATH_MODELS, PROXIED_PATHS
from router.discovery.file import FileWatcher
from router.discovery.kubernetes import KubernetesWatcher
from router.discovery.static import static_specs
from router.engine_metrics import MetricsScraper
from router.engines import EngineRegistry, EngineSpec
from router.errors import MethodNotAllowed, NotFound
from router.health import HealthChecker
from router.http_server import Request, Responder, bound_port, start_server
from router.metrics import RouterMetrics
from router.policies.base import RoutingPolicy
from router.proxy import Proxy
from router.ratelimit import RateLimiter
from router.settings import RouterSettings
from router.upstream import Upstream, UpstreamPool

_PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"


class RouterApp:
    """One router process's application; see the module docstring for its lifecycle."""

    def __init__(self, settings: RouterSettings, *, upstream: Upstream, policy: RoutingPolicy,
                 environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.upstream = upstream
        self.policy = policy
        self.environ = environ
        self.metrics = RouterMetrics()
        self.registry = EngineRegistry(default_models=settings.models, on_change=policy.on_engines_changed)
        limits = settings.limits
        limiter = (RateLimiter(rate=limits.rate_limit_rps, burst=limits.rate_limit_burst)
                   if limits.rate_limit_rps else None)
        self.proxy = Proxy(registry=self.registry, policy=policy, upstream=upstream, metrics=self.metrics,
                           keys=load_keys(settings, environ), limiter=limiter,
                           session_header=settings.session_header.lower(), max_retries=limits.max_retries,
                           policy_kind=getattr(policy, "kind", settings.policy.kind))
        self.health = HealthChecker(self.registry, upstream, settings.health)
        self.scraper = MetricsScraper(self.registry, upstream, interval_s=settings.health.metrics_interval_s,
                                      timeout_s=settings.health.timeout_s)
        self.draining = False
        self._tasks: list[asyncio.Task[None]] = []
        self._servers: list[asyncio.Server] = []
        self._routes = {PATH_HEALTH: self._health, PATH_METRICS: self._metrics, PATH_MODELS: self._models}

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Load the engines and launch the background tasks."""
        jobs: list[Coroutine[Any, Any, None]] = [self.health.run(), self.scraper.run()]
        s = self.settings
        if s.file_discovery is not None:
            jobs.append(FileWatcher(s.file_discovery, self.apply_engines,
                                    default_gpu=s.default_gpu_cache_tokens,
                                    default_cpu=s.default_cpu_cache_tokens).run())
        elif s.discovery is None:
            self.apply_engines(static_specs(self.settings))
        else:
            jobs.append(KubernetesWatcher(
                s.discovery, self.apply_engines, default_gpu=s.default_gpu_cache_tokens,
                default_cpu=s.default_cpu_cache_tokens, environ=self.environ).run())
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(job) for job in jobs]

    async def drain(self, timeout: float) -> None:
        """Stop accepting connections and wait (up to `timeout` s) for open requests to finish,
        so a terminating pod does not cut streams short; /health answers 503 meanwhile."""
        self.draining = True
        for server in self._servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(s.in_flight for s in self.registry.states.values()) and loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop listening, cancel the background tasks, close upstream connections."""
        for server in self._servers:
            server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.upstream.close()

    async def __aenter__(self) -> RouterApp:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def serve(self, host: str | None = None, port: int | None = None, *,
                    reuse_port: bool = False) -> int:
        """Listen (the settings' host/port unless given; port 0 picks one); returns the port."""
        server = await start_server(
            self.handle, host=host if host is not None else self.settings.host,
            port=port if port is not None else self.settings.port,
            max_body_bytes=self.settings.limits.max_body_bytes, reuse_port=reuse_port)
        self._servers.append(server)
        return bound_port(server)

    def apply_engines(self, specs: list[EngineSpec]) -> None:
        """Make the engine set exactly `specs` (discovery calls this)."""
        _, removed = self.registry.replace(specs)
        drop = getattr(self.upstream, "drop", None)
        for url in removed:
            if drop is not None:
                drop(url)

    # --- routes -------------------------------------------------------------------------
    async def handle(self, request: Request, responder: Responder) -> None:
        """The HTTP handler: proxied POSTs, and the router's own GET endpoints."""
        path = request.path
        if path in PROXIED_PATHS:
            if request.method != "POST":
                raise MethodNotAllowed(f"{path} accepts POST only")
            await self.proxy.handle(request, responder)
            return
        route = self._routes.get(path)
        if route is None:
            raise NotFound(f"no route {path}")
        if request.method != "GET":
            raise MethodNotAllowed(f"{path} accepts GET only")
        route(request, responder)

    def _health(self, request: Request, responder: Responder) -> None:
        healthy = self.registry.healthy_count()
        ok = healthy > 0 and not self.draining
        body = {"status": "ok" if ok else "draining" if self.draining else "unavailable",
                "healthy_engines": healthy, "engines": len(self.registry.states), "pid": os.getpid()}
        responder.send(200 if ok else 503, orjson.dumps(body))

    def _metrics(self, request: Request, responder: Responder) -> None:
        text = self.metrics.render(self.registry.states.values(), self.scraper.loads)
        responder.send(200, text, _PROMETHEUS)

    def _models(self, request: Request, responder: Responder) -> None:
        if self.proxy.keys.enabled:
            self.proxy.keys.check(request.headers.get("authorization"))
        data = [{"id": m, "object": "model", "owned_by": "llm-stack"} for m in self.registry.served_models()]
        responder.send(200, orjson.dumps({"object": "list", "data": data}))


def create_app(settings: RouterSettings, *, upstream: Upstream | None = None,
               policy: RoutingPolicy | None = None, environ: Mapping[str, str] | None = None) -> RouterApp:
    """Build the app; `upstream` defaults to a keep-alive `UpstreamPool`, `policy` to the
    settings' policy from the registry, `environ` (API keys, in-cluster API) to `os.environ`."""
    if upstream is None:
        limits = settings.limits
        upstream = UpstreamPool(connect_timeout=limits.upstream_connect_timeout_s,
                                read_timeout=limits.upstream_read_timeout_s)
    if policy is None:
        from router.policies.registry import build_policy  # the policy registry (router/policies/)

        policy = build_policy(settings.policy)
    return RouterApp(settings, upstream=upstream, policy=policy,
                     environ=os.environ if environ is None else environ)
