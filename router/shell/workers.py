"""Running the router: one process, or `workers` processes sharing the port (SO_REUSEPORT).

Each worker is a full, independent router (own engine state, health checks, policy) built
from the same settings; the policies are deterministic over the same inputs, so workers
place a conversation on the same engine without sharing state. The kernel spreads new
client connections over the workers. The parent only starts, watches and stops them, and
gives them one prometheus-client multiprocess directory, so `/metrics` on any worker shows
every worker's series.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import tempfile
from typing import Any

from router.settings import RouterSettings

log = logging.getLogger(__name__)

CLOSE_S = 1.0  # after the drain (`settings.drain_s`), uvicorn's own graceful close of what is left
# prometheus-client chooses its multiprocess value store from this variable when it is first
# imported (prometheus_client/values.py), so it is set before the workers start.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows); asyncio's loop works, slower
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


async def _serve(settings: RouterSettings, reuse_port: bool, metrics_dir: str | None) -> None:
    from router.shell.app import create_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(settings, metrics_dir=metrics_dir)
    port = await app.serve(reuse_port=reuse_port, graceful_s=CLOSE_S)  # runs the app's lifespan
    log.info("router listening on %s:%d (policy %s)", settings.host, port, settings.policy.kind)
    try:
        await stop.wait()
        log.info("draining: %d open requests, up to %gs", app.open_requests, settings.drain_s)
        if not await app.drain(settings.drain_s):
            log.warning("drain ended after %gs with %d requests open", settings.drain_s, app.open_requests)
    finally:
        await app.stop()


def serve_forever(settings: RouterSettings, *, reuse_port: bool = False,
                  metrics_dir: str | None = None) -> None:
    """Run one router process until SIGINT or SIGTERM."""
    with _runner() as runner:
        runner.run(_serve(settings, reuse_port, metrics_dir))


def setup_logging(level: str) -> None:
    """Plain stderr logging with the process id (several workers share one log)."""
    fmt = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt)


def _worker(data: dict[str, Any], log_level: str, metrics_dir: str) -> None:
    setup_logging(log_level)
    serve_forever(RouterSettings.from_dict(data), reuse_port=True, metrics_dir=metrics_dir)


def run(settings: RouterSettings) -> int:
    """Serve with `settings.workers` processes; returns an exit status."""
    if settings.workers == 1:
        serve_forever(settings)
        return 0
    with tempfile.TemporaryDirectory(prefix="llmstack-router-metrics-") as metrics_dir:
        os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by the spawned workers
        try:
            return _run_workers(settings, metrics_dir)
        finally:
            os.environ.pop(MULTIPROC_ENV, None)


def _run_workers(settings: RouterSettings, metrics_dir: str) -> int:
    ctx = multiprocessing.get_context("spawn")
    args = (settings.to_dict(), settings.log_level, metrics_dir)
    procs = [ctx.Process(target=_worker, args=args, daemon=True) for _ in range(settings.workers)]
    for proc in procs:
        proc.start()

    def stop(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for proc in procs:
        proc.join()
    return max((abs(p.exitcode or 0) for p in procs), default=0) and 1
