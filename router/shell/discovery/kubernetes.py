"""Kubernetes discovery: the engines are the ready pods matching a label selector.

The watcher lists the pods of one namespace, then follows the API's watch stream from the
list's resourceVersion: a pod counts as an engine while it is Running, Ready, has an IP and
is not terminating (no `deletionTimestamp`); a deleted pod leaves. Capacities come from the
pod annotations the components write (`ANNOTATION_GPU_CACHE_TOKENS` / `_CPU_`), the model
name from `ANNOTATION_SERVED_MODEL`. A watch that expires (410) or breaks is re-listed after
a short back-off. Authentication is the pod's service-account token, re-read on every
(re)connect because kubelet rotates it.

`pod_spec` is pure; `KubernetesWatcher` is the I/O shell the app runs as a task.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from contracts import ANNOTATION_CPU_CACHE_TOKENS, ANNOTATION_GPU_CACHE_TOKENS, ANNOTATION_SERVED_MODEL
from router.routing.engines import EngineSpec
from router.settings import KubernetesDiscovery

log = logging.getLogger(__name__)

Apply = Callable[[list[EngineSpec]], None]


class WatchExpired(Exception):
    """The API answered the watch with an error event (410 Gone: the version is too old)."""


def _is_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and status.get("phase") == "Running" and bool(status.get("podIP"))


def _tokens(annotations: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    raw = annotations.get(key)
    try:
        value = int(raw) if raw is not None else default
    except (TypeError, ValueError):
        log.warning("pod annotation %s=%r is not an integer; using %d", key, raw, default)
        return default
    return value if value >= minimum else default


def pod_spec(pod: Mapping[str, Any], discovery: KubernetesDiscovery, *, default_gpu: int,
             default_cpu: int) -> EngineSpec | None:
    """The engine a pod stands for, or None while it is not ready or is terminating."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp") or not _is_ready(pod):
        return None
    annotations = meta.get("annotations") or {}
    model = annotations.get(ANNOTATION_SERVED_MODEL)
    return EngineSpec(
        url=f"{discovery.scheme}://{pod['status']['podIP']}:{discovery.port}",
        gpu_cache_tokens=_tokens(annotations, ANNOTATION_GPU_CACHE_TOKENS, default_gpu, 1),
        cpu_cache_tokens=_tokens(annotations, ANNOTATION_CPU_CACHE_TOKENS, default_cpu, 0),
        models=frozenset((model,)) if isinstance(model, str) and model else frozenset(),
    )


class KubernetesWatcher:
    def __init__(self, discovery: KubernetesDiscovery, apply: Apply, *, default_gpu: int, default_cpu: int,
                 environ: Mapping[str, str], retry_s: float = 1.0) -> None:
        self.discovery = discovery
        self.apply = apply
        self.default_gpu = default_gpu
        self.default_cpu = default_cpu
        self.retry_s = retry_s
        self.api = (discovery.api_server or _in_cluster(environ)).rstrip("/")
        self.pods: dict[str, EngineSpec] = {}  # pod name -> engine (ready pods only)

    async def run(self) -> None:
        """List, then watch, forever (cancelled by the app)."""
        ssl_ctx = self._ssl_context()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    version = await self._list(session, ssl_ctx)
                    while True:
                        version = await self._watch(session, ssl_ctx, version)
                except WatchExpired as exc:
                    log.info("kubernetes watch expired (%s); re-listing", exc)
                    continue
                except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                    log.warning("kubernetes watch interrupted (%s); re-listing in %.1f s", exc, self.retry_s)
                await asyncio.sleep(self.retry_s)

    def _url(self) -> str:
        return f"{self.api}/api/v1/namespaces/{self.discovery.namespace}/pods"

    def _headers(self) -> dict[str, str]:
        token_file = Path(self.discovery.token_file)
        if token_file.is_file():
            return {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        return {}

    def _ssl_context(self) -> ssl.SSLContext | bool:
        if not self.api.startswith("https://"):
            return True  # aiohttp's default (plain http does not use it)
        ca = self.discovery.ca_file
        return ssl.create_default_context(cafile=ca if ca and Path(ca).is_file() else None)

    async def _list(self, session: aiohttp.ClientSession, ssl_ctx: ssl.SSLContext | bool) -> str:
        params = {"labelSelector": self.discovery.label_selector}
        listing = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=30)
        async with session.get(self._url(), params=params, headers=self._headers(), ssl=ssl_ctx,
                               timeout=listing) as resp:
            resp.raise_for_status()
            body = orjson.loads(await resp.read())
        self.pods = {}
        for pod in body.get("items") or []:
            self._update(pod)
        self._publish()
        return str(body["metadata"]["resourceVersion"])

    async def _watch(self, session: aiohttp.ClientSession, ssl_ctx: ssl.SSLContext | bool,
                     version: str) -> str:
        params = {"labelSelector": self.discovery.label_selector, "watch": "1", "resourceVersion": version,
                  "allowWatchBookmarks": "true", "timeoutSeconds": str(self.discovery.watch_timeout_s)}
        silent = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=self.discovery.watch_silence_s)
        async with session.get(self._url(), params=params, headers=self._headers(), ssl=ssl_ctx,
                               timeout=silent) as resp:
            resp.raise_for_status()
            buffer = b""
            async for data in resp.content.iter_any():
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        version = self._event(orjson.loads(line), version)
        return version

    def _event(self, event: Mapping[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            raise WatchExpired(f"{obj.get('code')} {obj.get('message', '')}".strip())
        new_version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind == "DELETED":
            self.pods.pop(obj["metadata"]["name"], None)
        elif kind in ("ADDED", "MODIFIED"):
            self._update(obj)
        else:
            return new_version  # BOOKMARK
        self._publish()
        return new_version

    def _update(self, pod: Mapping[str, Any]) -> None:
        name = pod["metadata"]["name"]
        spec = pod_spec(pod, self.discovery, default_gpu=self.default_gpu, default_cpu=self.default_cpu)
        if spec is None:
            self.pods.pop(name, None)
        else:
            self.pods[name] = spec

    def _publish(self) -> None:
        self.apply(list(self.pods.values()))


def _in_cluster(environ: Mapping[str, str]) -> str:
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ValueError("Kubernetes discovery needs 'discovery.api_server' outside a cluster "
                         "(KUBERNETES_SERVICE_HOST is not set)")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
