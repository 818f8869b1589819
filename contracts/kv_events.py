"""vLLM's KV-cache events: what the engines publish and the router reads (issue 19).

The engines' settings (`stack_components.vllm_args`) and the router's decoder
(`router.routing.kv_events`) both import these names; never retype them. Standard library only.

What vLLM 0.33.0 and LMCache 0.5.6 do, read in their source (the `.venv-engine` tool venv, the
engine image's versions) — where this text and the source disagree, the source wins:

Configuration (`vllm/config/kv_events.py`, `KVEventsConfig`; flag `--kv-events-config`, a JSON
object, `vllm/engine/arg_utils.py`): `enable_kv_cache_events` (False), `publisher` "null" | "zmq"
(None → "zmq" when enabled), `endpoint` ("tcp://*:5557"), `replay_endpoint` (None: no replay),
`buffer_steps` (10,000 batches kept for replay), `hwm` (100,000: PUB high-water mark; a slow
subscriber loses messages past it), `max_queue_size` (100,000), `topic` (""). vLLM encodes the
topic as UTF-8 and puts it on every message, nothing more: no placeholder or environment
expansion (`ZmqEventPublisher.__init__`). So the pod's IP reaches the topic through Kubernetes,
which expands `$(VAR)` in a container's `args` from the container's env and leaves an unresolved
reference as written (Container.args in the Kubernetes API, e.g. kubernetes-validate's v1.37
schemas), with `POD_IP` from the Downward API (`status.podIP`): no shell needed.

Publisher (`vllm/distributed/kv_events.py`, `ZmqEventPublisher`): a PUB socket bound on
`endpoint` (a "*" endpoint binds, others connect); each step's events go out as one 3-frame
message `(topic, seq, payload)`: `seq` 8 bytes big-endian unsigned, from 0 per publisher
(process), +1 per batch; `payload` msgpack (msgspec). Replay: a ROUTER socket on
`replay_endpoint` reads requests of exactly 3 frames `(identity, b"", start seq as 8 bytes
big-endian)` and answers each with every buffered batch with seq >= start as `(identity, b"",
topic, seq, payload)`, then an end marker `(identity, b"", b"", seq = -1 as 8 bytes big-endian
signed, i.e. 0xFF * 8, b"")`. So a DEALER client sends `(b"", seq)` and reads `(b"", topic, seq,
payload)` messages until the marker (a REQ client accepts only the first reply: seen with vLLM's
publisher in tests/router/routing/test_kv_events_decode.py). Batches older than the last
`buffer_steps` are gone: a gap past that cannot be replayed. Data-parallel rank r publishes on
the endpoint's port + r (`offset_endpoint_port`; our engines run one DP rank). An engine restart
starts seq at 0 again (`AllBlocksCleared` comes only from `BlockPool.reset_prefix_cache`, not at
start).

Wire format (`EventBatch`: msgspec `array_like=True, omit_defaults=True`): the batch is an array
`[ts: float, events: list, data_parallel_rank: int]` (the publisher fills the rank; an omitted
trailing default shortens the array). Each event, since vLLM PR #42892 (0.33 included), is a
msgspec tagged struct WITHOUT `array_like`: a map with the tag under "type", default-valued
fields omitted: `{"type": "BlockStored", "block_hashes", "parent_block_hash", "token_ids",
"block_size", "lora_id", "medium", "lora_name", "extra_keys"?, "group_idx"?,
"kv_cache_spec_kind"?, "kv_cache_spec_sliding_window"?, "locality"?, "ownership"?,
"session_id"?, "lookahead_token_ids"?}`, `{"type": "BlockRemoved", "block_hashes", "medium",
"group_idx"?, ...}`, `{"type": "AllBlocksCleared"}`. Earlier releases encoded each event as a
positional array `["BlockStored", block_hashes, parent_block_hash, token_ids, block_size,
lora_id, medium, lora_name, ...]` in that field order (fields were only ever appended), which is
what broke consumers on the switch (kthena#1535, llm-d-kv-cache#661): parse both.
Block hashes are `bytes` (the engine's hash digest, 32 bytes for sha256) or, with
`VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES`, the digest's low 64 bits as an int
(`maybe_convert_block_hash`, `vllm/v1/core/kv_cache_utils.py`). A GPU store carries the block's
`token_ids` (block_size of them per hash) and its parent's hash (None for a first block).
`medium` is "GPU" / "CPU" / "STORAGE" (`MEDIUM_*`) from vLLM's own pools.

Hashing (`kv_cache_utils.hash_block_tokens`): hash(parent hash or NONE_HASH, the block's token
ids as a tuple, extra keys), with `--prefix-caching-hash-algo` one of sha256 (pickle then
SHA-256, the default), sha256_cbor (canonical CBOR then SHA-256: reproducible across processes
and languages), xxhash, xxhash_cbor. NONE_HASH = hash(PYTHONHASHSEED) when it is set, else a
fixed seed "vllm-none-hash" for the sha256 variants and a random per-process seed for the
xxhash ones (so xxhash hashes never agree across engines without PYTHONHASHSEED).
`--block-size` defaults to `CacheConfig.DEFAULT_BLOCK_SIZE` (16) unless an attention backend
prefers another size; an explicit `--block-size` skips that choice (`vllm/platforms/interface.py`).

LMCache (LMCache 0.5.6, with vLLM's `LMCacheConnectorV1`): with `LMCACHE_ENABLE_KV_EVENTS=true`
(key `enable_kv_events`, default False, `lmcache/v1/config.py`), `LMCacheEngine.store` records
one `CacheStoreEvent` per stored chunk (`lmcache/v1/cache_engine.py`): block_hashes = [LMCache's
own chunk hash, not vLLM's block hash], parent = the previous chunk's hash (None for the first),
block_size = the chunk's token count (the chunk size, 256 by default, shorter at the end),
token_ids = `tokens[start:end + 1]` (one token MORE than the chunk when another follows),
medium = lowercase "cpu" (a `torch.device` when the tokens came as a tensor, i.e. multimodal
prompts). vLLM's connector republishes them as `BlockStored` on the engine's own stream
(`get_kv_connector_kv_cache_events`, merged into the step's batch by the scheduler). The
in-process engine records stores only: no `BlockRemoved` for its CPU tier ever arrives (only
LMCache's multiprocess adapter sends "CPU" removals), so the router must bound that tier itself.
"""

from __future__ import annotations

from typing import Final

KV_EVENTS_PORT: Final = 5557
"""The engine's PUB socket (vLLM's default endpoint port)."""
KV_REPLAY_PORT: Final = 5558
"""The engine's replay ROUTER socket (the port vLLM's example subscriber asks)."""
KV_EVENTS_PORT_NAME: Final = "kv-events"
KV_REPLAY_PORT_NAME: Final = "kv-replay"

KV_BLOCK_SIZE: Final = 16
"""Tokens per vLLM KV block, fixed on every engine (`--block-size`): vLLM's default, which every
CUDA attention backend takes; fixed so a backend's preference cannot change it under the router."""
KV_HASH_ALGO: Final = "sha256_cbor"
"""`--prefix-caching-hash-algo`: canonical CBOR then SHA-256, so a block's hash is a pure function
of (PYTHONHASHSEED, parent hash, token ids) that any process or language can recompute, and
collision-resistant (the xxhash variants are neither without a shared seed)."""
KV_REPLAY_BUFFER_STEPS: Final = 10_000
"""Batches each engine keeps for replay (vLLM's default `buffer_steps`)."""

POD_IP_ENV: Final = "POD_IP"
"""The engine container's env var holding its pod IP (Downward API `status.podIP`)."""
TOPIC_PREFIX: Final = "kv"
"""Topics read `kv@<pod ip>:<http port>@<served model>`: the form llm-d's precise prefix scorer
uses, so its subscribers and ours read the same engines."""

MEDIUM_GPU: Final = "GPU"
MEDIUM_CPU: Final = "CPU"
MEDIUM_STORAGE: Final = "STORAGE"
MEDIUMS: Final = (MEDIUM_GPU, MEDIUM_CPU, MEDIUM_STORAGE)
FEED_SYNCING: Final = "syncing"
FEED_LIVE: Final = "live"
FEED_UNTRUSTED: Final = "untrusted"
FEED_STALE: Final = "stale"
FEED_STATES: Final = (FEED_SYNCING, FEED_LIVE, FEED_UNTRUSTED, FEED_STALE)
"""The router's view of one engine's event stream (`router.routing.kv.feed.FeedState`; the
`state` label of `ROUTER_KV_EVENTS_STATE` and `/health`'s `kv_events`): only `live` is trusted."""
KV_SCORING_EVENTS: Final = "events"
KV_SCORING_APPROXIMATE: Final = "approximate"
KV_SCORINGS: Final = (KV_SCORING_EVENTS, KV_SCORING_APPROXIMATE)
"""How the router scores engines (`kv_events.scoring`, the stack's `kvEvents.scoring`; the `mode`
label of `ROUTER_KV_PREDICTED`): by the engines' own events, or by its own estimate."""
TIER_GPU: Final = "gpu"
TIER_CPU: Final = "cpu"
TIER_STORAGE: Final = "storage"
TIERS: Final = (TIER_GPU, TIER_CPU, TIER_STORAGE)
"""The `tier` label of `ROUTER_KV_PREDICTED` (vLLM's mediums, lowercase); delivered: the engines'
`vllm:prefix_cache_hits_total` (GPU) and `vllm:external_prefix_cache_hits_total` (LMCache's tiers)."""
FALLBACK_UNFOLLOWED: Final = "unfollowed"
FALLBACK_NO_TOKENS: Final = "no_tokens"
FALLBACK_REASONS: Final = (FEED_SYNCING, FEED_UNTRUSTED, FEED_STALE, FALLBACK_UNFOLLOWED, FALLBACK_NO_TOKENS)
"""Why an engine was scored by the router's estimate in event mode (the `reason` label of
`ROUTER_KV_FALLBACKS`): its feed's state, no feed for it, or no token ids for the request."""
GAP_REPLAYED: Final = "replayed"
GAP_LOST: Final = "lost"
REPLAY_END_SEQ: Final = b"\xff" * 8
"""The replay end marker's seq frame (-1 as 8 bytes big-endian signed)."""


def topic(pod_ip: str, port: int, model: str) -> str:
    """An engine's topic: `kv@<pod ip>:<port>@<model>` (the model may hold '@')."""
    return f"{TOPIC_PREFIX}@{pod_ip}:{port}@{model}"
