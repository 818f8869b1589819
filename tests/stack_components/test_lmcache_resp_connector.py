"""Why the engines reach the shared tier with `redis://` and not LMCache 0.5.6's native
`resp://` connector, and the LMCache constants the cache server is sized from, read from the
LMCache the engine image ships (`.venv-engine`).

The native client answers a GET of a missing key (a key the LRU server evicted after LMCache's
lookup found it) as a success and leaves the receive buffer as allocated; `RESPConnector._get`
returns that buffer as the chunk, so stale memory would be loaded as KV. Until that changes, a
`resp://` URL is refused by `LMCacheArgs`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stack_components.cache_clients import IN_FLIGHT_PER_RANK, REDIS_CONNECTOR_POOL
from stack_components.engine_check import engine_python
from stack_components.errors import ArgsError
from stack_components.lmcache import LMCacheArgs

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("lmcache_resp_probe.py")


@pytest.fixture(scope="module")
def probe() -> dict:
    python = engine_python(ROOT)
    if python is None:
        pytest.fail("the engine-check venv is missing: run `make install`")
    done = subprocess.run([str(python), str(PROBE)], capture_output=True, text=True, timeout=180,
                          cwd=PROBE.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_native_resp_client_serves_a_missing_key_as_a_hit(probe):
    """A GET of a key the server does not hold raises nothing and leaves the buffer untouched;
    a key it holds is read into the buffer (so the probe reaches the server)."""
    gets = probe["gets"]
    assert gets["present"] == {"raised": None, "buffer_untouched": False, "buffer_is_value": True}
    assert gets["exists_missing"] is False
    assert gets["missing"] == {"raised": None, "buffer_untouched": True, "buffer_is_value": False}


def test_sizing_constants_are_lmcaches_own(probe):
    """150 connections per RedisConnector, 8 threads for the RESP client (the budget's values in
    flight per rank), 256-token chunks by default."""
    assert probe["redis_pool"] == [REDIS_CONNECTOR_POOL]
    assert probe["resp_threads"] == [IN_FLIGHT_PER_RANK]
    assert probe["chunk_size_default"] == 256


def test_a_resp_url_is_refused():
    """`LMCacheArgs` accepts redis:// and refuses resp://, naming the field."""
    assert LMCacheArgs(remote_url="redis://cache:6379").remote_url == "redis://cache:6379"
    with pytest.raises(ArgsError, match="lmcache.remote_url"):
        LMCacheArgs(remote_url="resp://cache:6379")
