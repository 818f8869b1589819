"""Kubernetes discovery against a loopback fake of the API's pod list and watch."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from contracts import ANNOTATION_CPU_CACHE_TOKENS, ANNOTATION_GPU_CACHE_TOKENS, ANNOTATION_SERVED_MODEL
from router.settings import KubernetesDiscovery, RouterSettings
from router.shell.discovery.kubernetes import pod_spec
from tests.router.harness import run, running, until

NS = "serving"
SELECTOR = "llmstack.io/role=engine"


def pod(name: str, ip: str, *, ready: bool = True, deleting: bool = False, gpu: str | None = "1234",
        version: int = 1) -> dict[str, Any]:
    annotations = {ANNOTATION_SERVED_MODEL: "m", ANNOTATION_CPU_CACHE_TOKENS: "99"}
    if gpu is not None:
        annotations[ANNOTATION_GPU_CACHE_TOKENS] = gpu
    meta: dict[str, Any] = {"name": name, "resourceVersion": str(version), "annotations": annotations}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": "Running", "podIP": ip,
                                         "conditions": [{"type": "Ready", "status": str(ready)}]}}


class FakeKubeApi:
    """GET /api/v1/namespaces/NS/pods: a list, or with ?watch=1 a stream of queued events."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.lists = 0
        self.watches: list[dict[str, str]] = []
        self.auth: list[str | None] = []

    async def pods(self, request: web.Request) -> web.StreamResponse:
        self.auth.append(request.headers.get("Authorization"))
        assert request.query["labelSelector"] == SELECTOR
        if request.query.get("watch") != "1":
            self.lists += 1
            return web.json_response({"kind": "PodList", "metadata": {"resourceVersion": "10"},
                                      "items": self.items})
        self.watches.append(dict(request.query))
        resp = web.StreamResponse()
        await resp.prepare(request)
        while (event := await self._next(request)) is not None:
            await resp.write(orjson.dumps(event) + b"\n")
            if event["type"] == "ERROR":
                break
        return resp

    async def _next(self, request: web.Request) -> dict[str, Any] | None:
        """The next queued event; None once the watcher has gone away."""
        while request.transport is not None and not request.transport.is_closing():
            try:
                return await asyncio.wait_for(self.events.get(), 0.05)
            except TimeoutError:
                continue
        return None

    async def start(self) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_get(f"/api/v1/namespaces/{NS}/pods", self.pods)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return runner, f"http://127.0.0.1:{port}"


def _settings(api: str, token_file: str, watch_timeout_s: int = 60) -> RouterSettings:
    discovery = KubernetesDiscovery(namespace=NS, label_selector=SELECTOR, port=8000, api_server=api,
                                    token_file=token_file, ca_file=None, watch_timeout_s=watch_timeout_s)
    return RouterSettings(discovery=discovery, default_gpu_cache_tokens=500, host="127.0.0.1")


def test_watch_follows_pods_ready_terminating_and_deleted(tmp_path: Any) -> None:
    """Ready pods join with annotated capacities; unready, terminating and deleted pods leave."""
    async def body() -> None:
        api = FakeKubeApi()
        api.items = [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False)]
        runner, url = await api.start()
        token = tmp_path / "token"
        token.write_text("sa-token\n")
        async with running(_settings(url, str(token))) as (app, _):
            engines = app.registry.states
            await until(lambda: set(engines) == {"http://10.0.0.1:8000"})
            assert (engines["http://10.0.0.1:8000"].gpu_cache_tokens,
                    engines["http://10.0.0.1:8000"].cpu_cache_tokens) == (1234, 99)
            steps = [
                ({"type": "MODIFIED", "object": pod("b", "10.0.0.2", gpu=None, version=11)},
                 {"http://10.0.0.1:8000", "http://10.0.0.2:8000"}),
                ({"type": "MODIFIED", "object": pod("a", "10.0.0.1", deleting=True, version=12)},
                 {"http://10.0.0.2:8000"}),
                ({"type": "ADDED", "object": pod("c", "10.0.0.3", version=13)},
                 {"http://10.0.0.2:8000", "http://10.0.0.3:8000"}),
                ({"type": "DELETED", "object": pod("b", "10.0.0.2", version=14)}, {"http://10.0.0.3:8000"}),
            ]
            for event, expected in steps:
                await api.events.put(event)
                await until(lambda expected=expected: set(engines) == expected)
            assert engines["http://10.0.0.3:8000"].gpu_cache_tokens == 1234
            assert api.watches[0]["resourceVersion"] == "10"
        assert api.auth and set(api.auth) == {"Bearer sa-token"}
        await runner.cleanup()
    run(body())


def test_expired_watch_relists(tmp_path: Any) -> None:
    """A 410 error event makes the router list again and adopt the new pod set."""
    async def body() -> None:
        api = FakeKubeApi()
        api.items = [pod("a", "10.0.0.1")]
        runner, url = await api.start()
        async with running(_settings(url, str(tmp_path / "absent"))) as (app, _):
            await until(lambda: set(app.registry.states) == {"http://10.0.0.1:8000"})
            api.items = [pod("d", "10.0.0.4")]
            await api.events.put({"type": "ERROR", "object": {"code": 410, "message": "too old"}})
            await until(lambda: set(app.registry.states) == {"http://10.0.0.4:8000"})
            assert api.lists == 2
            await api.events.put(None)
        assert api.auth[0] is None  # no token file: no Authorization header
        await runner.cleanup()
    run(body())


def test_silent_watch_is_abandoned_and_the_pods_relisted(tmp_path: Any) -> None:
    """A watch connection that goes quiet (dropped by a NAT without a reset: the fake keeps it
    open and sends nothing) is given up after watch_silence_s and the pods are listed again, so
    discovery does not stop forever (issue 21 item 12: before, no read timeout at all)."""
    async def body() -> None:
        api = FakeKubeApi()
        api.items = [pod("a", "10.0.0.1")]
        runner, url = await api.start()
        async with running(_settings(url, str(tmp_path / "absent"), watch_timeout_s=1)) as (app, _):
            await until(lambda: set(app.registry.states) == {"http://10.0.0.1:8000"})
            api.items = [pod("e", "10.0.0.5")]  # changed while the watch is silent
            await until(lambda: set(app.registry.states) == {"http://10.0.0.5:8000"}, timeout=10)
            assert api.watches[0]["timeoutSeconds"] == "1" and api.lists >= 2
        await runner.cleanup()
    run(body())


def test_pod_spec_defaults_bad_annotations_and_skips_unready() -> None:
    """Missing or malformed capacity annotations fall back to defaults; no IP or unready is no engine."""
    discovery = KubernetesDiscovery(namespace=NS)
    spec = pod_spec(pod("a", "10.1.1.1", gpu="lots"), discovery, default_gpu=7, default_cpu=0)
    assert spec is not None and (spec.gpu_cache_tokens, spec.models) == (7, frozenset({"m"}))
    no_ip = pod("b", "")
    assert pod_spec(no_ip, discovery, default_gpu=7, default_cpu=0) is None
    assert pod_spec(pod("c", "10.1.1.2", ready=False), discovery, default_gpu=7, default_cpu=0) is None
