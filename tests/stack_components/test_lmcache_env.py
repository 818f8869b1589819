"""LMCache's settings as environment variables."""

from __future__ import annotations

from stack_components.lmcache import LMCacheArgs, lmcache_env


def test_cpu_tier_only() -> None:
    """A CPU buffer enables the local CPU tier with its per-rank size in GiB (LMCache's unit), and
    no disk or remote tier; LMCache's ignored LMCACHE_USE_EXPERIMENTAL is not rendered."""
    env = lmcache_env(LMCacheArgs(cpu_buffer_gib=120, chunk_size=256))
    assert env["LMCACHE_LOCAL_CPU"] == "True"
    assert env["LMCACHE_MAX_LOCAL_CPU_SIZE"] == "120"
    assert env["LMCACHE_CHUNK_SIZE"] == "256"
    assert not {"LMCACHE_LOCAL_DISK", "LMCACHE_REMOTE_URL", "LMCACHE_USE_EXPERIMENTAL"} & env.keys()


def test_no_cpu_buffer_disables_cpu_tier() -> None:
    """A zero buffer turns the CPU tier off."""
    env = lmcache_env(LMCacheArgs())
    assert env["LMCACHE_LOCAL_CPU"] == "False"
    assert env["LMCACHE_MAX_LOCAL_CPU_SIZE"] == "0"


def test_disk_and_remote_tiers() -> None:
    """Disk tier as a file:// URL with its size; remote tier with its URL and serde."""
    env = lmcache_env(
        LMCacheArgs(
            disk_buffer_gib=500.5,
            disk_path="/mnt/lmc",
            remote_url="redis://cache.ns.svc.cluster.local:6379",
            remote_serde="cachegen",
        )
    )
    assert env["LMCACHE_LOCAL_DISK"] == "file:///mnt/lmc/"
    assert env["LMCACHE_MAX_LOCAL_DISK_SIZE"] == "500.5"
    assert env["LMCACHE_REMOTE_URL"] == "redis://cache.ns.svc.cluster.local:6379"
    assert env["LMCACHE_REMOTE_SERDE"] == "cachegen"


def test_every_key_is_an_lmcache_string_setting() -> None:
    """All names carry LMCache's prefix and all values are strings (env vars)."""
    env = lmcache_env(LMCacheArgs(cpu_buffer_gib=1, disk_buffer_gib=1, remote_url="redis://x:1"))
    assert len(env) == 7
    assert all(k.startswith("LMCACHE_") and isinstance(val, str) for k, val in env.items())
