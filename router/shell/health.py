"""Active health checks: every engine's `GET /health`, on a fixed tick, all in parallel.

An engine leaves rotation after `unhealthy_after` consecutive failed checks and returns
after `healthy_after` good ones. A check fails when the engine refuses, errors, or does not
answer within `timeout_s`; ticks are `interval_s` apart and a tick waits for its slowest
check, so an engine that stops answering is out within about
`unhealthy_after × max(interval_s, timeout_s) + interval_s` (10 s with the defaults).
When an engine comes (back) into rotation its served models are read from `/v1/models`. An
engine ejected by the proxy (passive ejection, `router.routing.ejection`) comes back only once
its minimum time out has passed and a check succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from contracts import PATH_HEALTH, PATH_MODELS
from router.routing.ejection import Ejector
from router.routing.engines import EngineRegistry
from router.settings import HealthSettings
from router.shell.errors import UpstreamError
from router.shell.upstream import Upstream

log = logging.getLogger(__name__)


class HealthChecker:
    def __init__(self, registry: EngineRegistry, upstream: Upstream, settings: HealthSettings,
                 ejector: Ejector | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.ejector = ejector
        self.clock = clock
        self.upstream = upstream
        self.settings = settings
        self._fails: dict[str, int] = {}
        self._oks: dict[str, int] = {}
        self._models_known: set[str] = set()

    async def run(self) -> None:
        """Check forever, one tick every `interval_s` (cancelled by the app)."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.check_all()
            await asyncio.sleep(max(0.0, started + self.settings.interval_s - loop.time()))

    async def check_all(self) -> None:
        urls = list(self.registry.states)
        for gone in set(self._fails) - set(urls):
            self._forget(gone)
        await asyncio.gather(*(self._check(url) for url in urls))

    def _forget(self, url: str) -> None:
        if self.ejector is not None:
            self.ejector.forget(url)
        self._fails.pop(url, None)
        self._oks.pop(url, None)
        self._models_known.discard(url)

    async def _check(self, url: str) -> None:
        ok = await self._get(url, PATH_HEALTH) is not None
        if ok:
            self._fails[url] = 0
            self._oks[url] = self._oks.get(url, 0) + 1
            ready = self._oks[url] >= self.settings.healthy_after
            if ready and (self.ejector is None or self.ejector.may_return(url, self.clock())) \
                    and self.registry.set_healthy(url, True):
                log.info("engine %s is healthy again", url)
                self._models_known.discard(url)
            if url not in self._models_known:
                await self._learn_models(url)
        else:
            self._oks[url] = 0
            self._fails[url] = self._fails.get(url, 0) + 1
            if self._fails[url] >= self.settings.unhealthy_after and self.registry.set_healthy(url, False):
                log.warning("engine %s left rotation after %d failed checks", url, self._fails[url])

    async def _learn_models(self, url: str) -> None:
        body = await self._get(url, PATH_MODELS)
        cards = model_cards(body) if body is not None else None
        if cards:
            self.registry.set_models(url, cards, cards=cards)
            self._models_known.add(url)

    async def _get(self, url: str, path: str) -> bytes | None:
        """The body of a 200 answer within the timeout, else None."""
        timeout = self.settings.timeout_s
        try:
            async with asyncio.timeout(timeout):
                resp = await self.upstream.request(url, "GET", path, timeout=timeout)
                try:
                    body = await resp.read()
                finally:
                    resp.release()
        except (UpstreamError, TimeoutError, OSError):
            return None
        return body if resp.status == 200 else None


CARD_FIELDS = {"root": str, "parent": str, "max_model_len": int}
"""What the router keeps of an engine's model card (vLLM 0.33's `ModelCard`,
vllm/entrypoints/serve/engine/protocol.py) to answer `/v1/models` as vLLM does."""


def model_cards(body: bytes) -> dict[str, dict[str, Any]]:
    """The models of an OpenAI `/v1/models` answer, by id, each with the fields of
    `CARD_FIELDS` it carries with the right type; {} for anything else."""
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return {}
    return {m["id"]: {k: m[k] for k, kind in CARD_FIELDS.items() if type(m.get(k)) is kind}
            for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)}
