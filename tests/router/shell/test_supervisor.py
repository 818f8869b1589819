"""Supervised background tasks: a task that dies is logged, counted, restarted, and shown."""

from __future__ import annotations

import asyncio

import pytest

import contracts as c
from router.shell.supervisor import Supervisor, backoff_s
from tests.router.fake_engine import FakeEngine
from tests.router.harness import json_session, run, running, settings_for, until
from tests.router.shell.test_router_metrics import samples


def test_backoff_doubles_and_is_capped() -> None:
    """0.5, 1, 2, ... seconds, never above 30."""
    assert [backoff_s(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_s(100) == 30.0


def test_a_dying_task_is_restarted_counted_and_shown_down_meanwhile(caplog: pytest.LogCaptureFixture) -> None:
    """A job that raises twice then runs: two restarts, the callback per restart, `down()`
    names it while it waits, and the traceback is logged."""
    async def body() -> None:
        gate = asyncio.Event()
        runs: list[int] = []
        restarted: list[str] = []

        async def job() -> None:
            runs.append(1)
            if len(runs) <= 2:
                raise RuntimeError(f"boom {len(runs)}")
            await asyncio.Event().wait()  # healthy: runs until cancelled

        sup = Supervisor(on_restart=restarted.append, backoff=lambda n: 0.0 if gate.is_set() else 60.0)
        sup.spawn("scrape", job)
        await until(lambda: sup.down() == ["scrape"])
        gate.set()
        await until(lambda: len(runs) == 1)  # still waiting out the first (long) backoff
        await sup.stop()
        sup.spawn("scrape", job)  # a fresh start with the short backoff
        await until(lambda: len(runs) == 3 and not sup.down())
        assert restarted == ["scrape", "scrape"]
        assert sup.restarts == {"scrape": 2}
        await sup.stop()
    run(body())
    assert "boom 1" in caplog.text and "boom 2" in caplog.text


def test_the_app_counts_restarts_in_metrics_and_health() -> None:
    """A scraper that keeps failing: /metrics counts its restarts, /health names it down (503)."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (app, url), json_session() as s:
            async def broken() -> None:
                raise RuntimeError("scraper defect")

            app.scraper.scrape_all = broken  # type: ignore[method-assign]
            await until(lambda: app.supervisor.restarts["metrics_scrape"] >= 1)
            async with s.get(url + "/health") as r:
                status, health = r.status, await r.json()
            async with s.get(url + "/metrics") as r:
                found = samples(await r.text())
        assert status == 503 and health["status"] == "degraded"
        assert health["tasks_down"] == ["metrics_scrape"] and health["task_restarts"]["metrics_scrape"] >= 1
        assert found[c.ROUTER_TASK_RESTARTS][(("task", "metrics_scrape"),)] >= 1
        await engine.stop()
    run(body())
