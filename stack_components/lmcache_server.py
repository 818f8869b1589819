"""`LMCacheServer`: the optional shared KV-cache tier every engine reads and writes, as a
Deployment and a Service: a Redis-protocol server (Valkey) bounded by `maxmemory` and evicting
least-recently-used entries, which LMCache reaches as `LMCACHE_REMOTE_URL=redis://host:port`
(its RedisConnector, lmcache/v1/storage_backend/connector/redis_adapter.py).

LMCache's own `lmcache_server HOST PORT [storage]` is not used: in LMCache 0.5.6 it takes no
size and its local backend has no evictor (lmcache/v1/server/storage_backend/local_backend.py,
"TODO: please add evictor"), so it grows until it is OOM-killed.

The pod's memory is `maxmemory` plus the clients' budget (`cache_clients`: every connection's
buffers, capped per client and in total) plus the process's own overhead. LMCache 0.5.6's
native `resp://` connector is not used: its client resolves a GET of a missing key as a success
and leaves the buffer as allocated (checked in tests/stack_components/test_lmcache_resp_connector.py),
so a chunk evicted between lookup and load would be served as KV.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from contracts import ROLE_CACHE_SERVER
from stack_components import _validate as v
from stack_components import kube
from stack_components.cache_clients import CacheClients, client_flags
from stack_components.common import Placement
from stack_components.labels import object_labels, selector_labels
from stack_components.naming import object_name, service_host

DEFAULT_CACHE_SERVER_IMAGE = "valkey/valkey:8.0.2"
PORT_NAME = "redis"
EVICTION_POLICY = "allkeys-lru"
PROCESS_OVERHEAD_GIB = 2  # the server's own memory besides `maxmemory` (buffers, fragmentation)


@dataclass(frozen=True, kw_only=True)
class LMCacheServerArgs:
    """One shared, bounded cache server."""

    namespace: str = "default"
    """Namespace (`LLMStack` sets it)."""
    image: str = DEFAULT_CACHE_SERVER_IMAGE
    """Redis-protocol server image providing `valkey-server`, pinned."""
    command: tuple[str, ...] = ("valkey-server",)
    """Server entry point; the port and memory flags are appended."""
    port: int = 6379
    """TCP port of the server."""
    cpu: float = 4.0
    """CPU cores (request = limit)."""
    max_memory_gib: int = 64
    """Cache size in GiB (`maxmemory`); beyond it the least recently used entries are evicted.
    The pod's memory is this plus the clients' budget plus 2 GiB for the process."""
    clients: CacheClients = field(default_factory=CacheClients)
    """The engine ranks that connect and the largest value they move: they size `maxclients`,
    the per-client buffer caps and the clients' memory budget (`maxmemory-clients`)."""
    placement: Placement = field(default_factory=Placement)
    """Node selector and tolerations."""
    run_as_user: int = 10001
    """Non-root uid."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on every object."""

    def __post_init__(self) -> None:
        v.dns_label("namespace", self.namespace)
        v.non_empty("image", self.image)
        v.strings("command", self.command)
        v.int_in("port", self.port, 1, 65535)
        v.positive("cpu", self.cpu)
        v.int_in("max_memory_gib", self.max_memory_gib, 1, 4096)
        v.int_in("run_as_user", self.run_as_user, 1, 2**31 - 1)
        v.labels("labels", self.labels)

    @property
    def pod_memory_gib(self) -> int:
        """Memory request = limit of the pod: the cache, the clients' budget, the process."""
        return self.max_memory_gib + self.clients.client_memory_gib + PROCESS_OVERHEAD_GIB


def lmcache_server_url(name: str, namespace: str, port: int) -> str:
    """The `LMCACHE_REMOTE_URL` engines use to reach the server named `name`."""
    return f"redis://{service_host(object_name(name), namespace)}:{port}"


def server_args(args: LMCacheServerArgs) -> list[str]:
    """Flags after the entry point: a bounded in-memory LRU cache with bounded clients, no
    persistence."""
    return [
        "--port", str(args.port),
        "--maxmemory", str(args.max_memory_gib * (1 << 30)),  # bytes: no unit-suffix ambiguity
        "--maxmemory-policy", EVICTION_POLICY,
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "no",  # reachable only through the NetworkPolicy on its port
        *client_flags(args.clients),
    ]


def build_cache_server_manifests(name: str, args: LMCacheServerArgs) -> dict[str, dict]:
    """Deployment and Service of the cache server."""
    labels = object_labels(ROLE_CACHE_SERVER, name, None, args.labels)
    selector = selector_labels(ROLE_CACHE_SERVER, name)
    return {
        "deployment": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": kube.metadata(name, args.namespace, labels),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "strategy": {"type": "Recreate"},
                "template": {"metadata": {"labels": labels}, "spec": build_pod_spec(args)},
            },
        },
        "service": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": kube.metadata(name, args.namespace, labels),
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": PORT_NAME, "port": args.port, "targetPort": PORT_NAME, "protocol": "TCP"}],
            },
        },
    }


def build_pod_spec(args: LMCacheServerArgs) -> dict[str, Any]:
    """One non-root container listening on all interfaces, with a TCP probe."""
    probe = {
        "tcpSocket": {"port": PORT_NAME},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }
    container = {
        "name": "lmcache-server",
        "image": args.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [*args.command, *server_args(args)],
        "ports": [{"name": PORT_NAME, "containerPort": args.port, "protocol": "TCP"}],
        "resources": kube.resources(cpu=args.cpu, memory_gib=args.pod_memory_gib),
        "securityContext": kube.container_security_context(read_only_root=True),
        "workingDir": "/tmp",
        "env": [{"name": "HOME", "value": "/tmp"}],
        "readinessProbe": probe,
        "livenessProbe": dict(probe, failureThreshold=6),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    spec: dict[str, Any] = {
        "securityContext": kube.pod_security_context(args.run_as_user),
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [kube.empty_dir("tmp", 1)],
        "tolerations": [t.to_manifest() for t in args.placement.tolerations],
    }
    if args.placement.node_selector:
        spec["nodeSelector"] = dict(args.placement.node_selector)
    return spec


class LMCacheServer(pulumi.ComponentResource):
    """The shared LMCache remote tier: Deployment + Service."""

    url: pulumi.Output[str]
    """The `redis://host:port` URL engines set as LMCACHE_REMOTE_URL."""

    def __init__(
        self, name: str, args: LMCacheServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmstack:components:LMCacheServer", name, None, opts)
        child = kube.child_opts(self, opts)
        manifests = build_cache_server_manifests(object_name(name), args)
        created = {kind: kube.create(f"{name}-{kind}", m, child) for kind, m in manifests.items()}
        url = lmcache_server_url(name, args.namespace, args.port)
        self.url = created["service"].metadata.apply(lambda _: url)
        self.register_outputs({"url": self.url})
