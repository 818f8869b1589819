"""LMCache settings for one engine, rendered (pure) as the environment variables LMCache reads:
`LMCACHE_` + a key of LMCache's `_CONFIG_DEFINITIONS` (lmcache/v1/config.py), upper-cased.
LMCache ignores unknown `LMCACHE_*` names silently (`LMCACHE_USE_EXPERIMENTAL`, which older
production-stack charts set, is one in 0.5.6), so the suite checks every name against that
table with LMCache's own code (`engine_probe.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from stack_components import _validate as v

REMOTE_SERDES = ("naive", "cachegen")
REMOTE_SCHEMES = ("lm://", "redis://", "rediss://", "infinistore://", "mooncakestore://")


@dataclass(frozen=True, kw_only=True)
class LMCacheArgs:
    """LMCache tiers behind one vLLM engine (via the LMCacheConnectorV1 KV connector)."""

    chunk_size: int = 256
    """Tokens per LMCache chunk (LMCACHE_CHUNK_SIZE)."""
    cpu_buffer_gib: float = 0.0
    """Local CPU (pinned host memory) buffer in GiB PER TENSOR-PARALLEL RANK; 0 disables the CPU
    tier (LMCACHE_LOCAL_CPU / LMCACHE_MAX_LOCAL_CPU_SIZE). LMCache multiplies the value by 1024³
    and every rank of a TP engine allocates its own buffer (lmcache/v1/cache_engine.py), so an
    engine pod holds `tensor_parallel_size` × this; its memory request grows by that."""
    disk_buffer_gib: float = 0.0
    """Local disk buffer in GiB per tensor-parallel rank; 0 disables the disk tier
    (LMCACHE_LOCAL_DISK / LMCACHE_MAX_LOCAL_DISK_SIZE, also × 1024³ per rank in
    lmcache/v1/storage_backend/local_disk_backend.py)."""
    disk_path: str = "/mnt/lmcache"
    """Directory of the disk tier inside the engine container (an emptyDir the engine mounts)."""
    remote_url: str | None = None
    """Shared remote tier, e.g. "lm://lmcache.llm.svc.cluster.local:65432" (LMCACHE_REMOTE_URL);
    `LLMStack` fills it from its `LMCacheServer` when unset."""
    remote_serde: str = "naive"
    """Serialiser for the remote tier (LMCACHE_REMOTE_SERDE)."""

    def __post_init__(self) -> None:
        v.int_in("lmcache.chunk_size", self.chunk_size, 16, 65536)
        v.non_negative("lmcache.cpu_buffer_gib", self.cpu_buffer_gib)
        v.non_negative("lmcache.disk_buffer_gib", self.disk_buffer_gib)
        v.require(
            self.disk_path.startswith("/"), "lmcache.disk_path", self.disk_path, "must be an absolute path"
        )
        v.require(
            self.remote_url is None or self.remote_url.startswith(REMOTE_SCHEMES),
            "lmcache.remote_url",
            self.remote_url,
            f"must start with one of {', '.join(REMOTE_SCHEMES)}",
        )
        v.one_of("lmcache.remote_serde", self.remote_serde, REMOTE_SERDES)


def _gib(value: float) -> str:
    return f"{float(value):g}"


def lmcache_env(args: LMCacheArgs, *, kv_events: bool = False) -> dict[str, str]:
    """LMCache's configuration as environment variables (name → value), stable order. With
    `kv_events`, LMCache records a store event per chunk it keeps (`enable_kv_events`), which
    vLLM's LMCacheConnectorV1 republishes on the engine's KV-event stream (`contracts.kv_events`)."""
    env = {
        "LMCACHE_CHUNK_SIZE": str(args.chunk_size),
        "LMCACHE_LOCAL_CPU": "True" if args.cpu_buffer_gib > 0 else "False",
        "LMCACHE_MAX_LOCAL_CPU_SIZE": _gib(args.cpu_buffer_gib),
    }
    if args.disk_buffer_gib > 0:
        env["LMCACHE_LOCAL_DISK"] = f"file://{args.disk_path.rstrip('/')}/"
        env["LMCACHE_MAX_LOCAL_DISK_SIZE"] = _gib(args.disk_buffer_gib)
    if args.remote_url:
        env["LMCACHE_REMOTE_URL"] = args.remote_url
        env["LMCACHE_REMOTE_SERDE"] = args.remote_serde
    if kv_events:
        env["LMCACHE_ENABLE_KV_EVENTS"] = "True"
    return env
