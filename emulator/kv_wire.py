"""The emulator's cache changes as vLLM 0.33's KV-event payloads (pure: values in, bytes out).

What vLLM sends, read in its source (`.venv-engine`, vLLM 0.33.0; `contracts.kv_events` has the
rest): one msgpack `EventBatch` per engine step that changed the cache, `[ts, events, rank]`
(`array_like`, the publisher fills `data_parallel_rank` 0). Each event in one of two encodings
(`Wire`): a tagged map, tag under "type" first then the fields in declaration order with the
defaulted ones omitted (`msgspec` `tag=True, omit_defaults=True`: vLLM 0.33); or a positional
array `[tag, field, ...]` of every field (the same classes with `array_like=True`, the encoding
before vLLM PR #42892; msgspec omits no default from an array, and older releases' classes
had a prefix of these fields). Byte for byte as msgspec writes them: a map's header is sized
for the class's most entries (BlockStored's 16 take a map16 header even when fewer are sent),
an array's for its length. The fields, as vLLM fills them:

- GPU `BlockStored` (`BlockPool.cache_full_blocks`): the run's hashes, the parent's hash (None
  for a prompt's first block), the run's token ids, `block_size`, `lora_id` None, medium "GPU",
  `lora_name` None, `extra_keys` one None per block (`to_event_extra_keys` of a list of Nones
  is that list), `group_idx` 0. GPU `BlockRemoved` (`_emit_block_removed_events`): one hash per
  event, medium "GPU", `group_idx` 0. `AllBlocksCleared` (`reset_prefix_cache`): no fields.
- CPU tier, `CpuStyle.VLLM` (the offloading connector's self-describing events,
  `kv_connector/v1/offloading/events.py`): `BlockStored` as on the GPU with medium "CPU" and
  `kv_cache_spec_kind` "full_attention", and `BlockRemoved` with medium "CPU" on eviction.
- CPU tier, `CpuStyle.LMCACHE` (LMCache 0.5.6's republished `CacheStoreEvent`s, see
  `contracts.kv_events`; vLLM's `LMCacheConnectorV1` republishes them with only the base
  fields, `kv_connector/v1/lmcache_connector.py`): medium lowercase "cpu", LMCache's own chunk
  hash (not the GPU block's), no `extra_keys` or `group_idx`, no removals ever. Unlike
  LMCache the chunk is the emulator's 16-token block (a demoted GPU block: this CPU tier is
  a victim cache), and its token ids stop at the block (LMCache adds the next chunk's first).

Block hashes: the emulator's blocks are `router.routing.prompt` hashes (xxh3-64 of the prompt's
bytes), not vLLM's sha256_cbor of token ids, so the published hash is a stand-in that, like
vLLM's, identifies the prefix but cannot be recomputed from tokens by a consumer: by default
the SHA-256 digest of the block's 8 bytes (32 bytes, the shape of a sha256 hash), or with
`int_hashes` the block's 64-bit value itself (vLLM's `VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES`).
A consumer keys blocks by their token ids (`router.routing.kv.keys`), as it must with vLLM.

Token ids: the emulator has no tokenizer; a token is 4 UTF-8 bytes of the prompt read as a
big-endian integer (`emulator.tokenize.encode`, what its `/tokenize` answers), so block i's ids
spell exactly the 64 bytes `router.routing.prompt.block_hashes` hashes as block i. The router
derives the same keys from a request as `block_keys(tokenize.encode(prompt_text(body)))`: for a
completion that is the engine's own text; for a chat the engine continues the rendered chat plus
the generation prompt (`emulator.generation.generation_context`), of which `prompt_text` is a
prefix, so the router's keys are the leading keys of the engine's blocks (chained from the same
root, they agree block for block). Deterministic: no seed, no per-process state.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from contracts.kv_events import MEDIUM_CPU
from emulator.cache import CacheEvent, Cleared, Removed, Stored

GROUP_IDX: Final = 0
"""The KV-cache group of every event: a plain decoder model has one group."""
SPEC_KIND: Final = "full_attention"
"""`KVCacheSpecKind.FULL_ATTENTION`, which the offloading connector puts on its stores."""
_LMCACHE_SALT: Final = b"lmcache-chunk"


class Wire(enum.Enum):
    """How events are encoded."""

    MAP = "map"
    """Tagged maps (vLLM 0.33)."""
    ARRAY = "array"
    """Positional arrays (vLLM before PR #42892)."""


class CpuStyle(enum.Enum):
    """Who publishes the CPU tier's events."""

    VLLM = "vllm"
    """vLLM's offloading connector: medium "CPU", stores and removals."""
    LMCACHE = "lmcache"
    """LMCache's republished stores: medium "cpu", chunk hashes, no removals."""


_STORED_FIELDS: Final = ("block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id", "medium",
                         "lora_name", "extra_keys", "group_idx", "kv_cache_spec_kind",
                         "kv_cache_spec_sliding_window", "locality", "ownership", "session_id",
                         "lookahead_token_ids")
"""vLLM 0.33's `BlockStored` fields, in order."""
_STORED_REQUIRED: Final = 7  # fields before extra_keys have no default: always in a map
_REMOVED_FIELDS: Final = ("block_hashes", "medium", "group_idx", "locality", "ownership")
_REMOVED_REQUIRED: Final = 2
_FIXMAP_MAX: Final = 15
_encode = msgspec.msgpack.Encoder().encode


class BatchEncoder:
    """Encodes one engine's cache events as vLLM's EventBatch payloads."""

    def __init__(self, *, wire: Wire = Wire.MAP, int_hashes: bool = False,
                 cpu_style: CpuStyle = CpuStyle.VLLM, block_size: int = 16,
                 data_parallel_rank: int = 0) -> None:
        self.wire = wire
        self.int_hashes = int_hashes
        self.cpu_style = cpu_style
        self.block_size = block_size
        self.data_parallel_rank = data_parallel_rank

    def payload(self, ts: float, events: Iterable[CacheEvent]) -> bytes | None:
        """The msgpack EventBatch of one step's events; None when none is published (vLLM sends
        no batch for a step without events)."""
        encoded = [e for e in map(self.event, events) if e is not None]
        if not encoded:
            return None
        return _encode([float(ts), encoded, self.data_parallel_rank])

    def event(self, event: CacheEvent) -> Any:
        """One event as its map or array (None: this publisher does not report it)."""
        if isinstance(event, Cleared):
            return self._shape("AllBlocksCleared", (), 0)
        lmcache = event.tier == MEDIUM_CPU and self.cpu_style is CpuStyle.LMCACHE
        medium = event.tier.lower() if lmcache else event.tier
        if isinstance(event, Removed):
            if lmcache:
                return None
            values = ([self.block_hash(b) for b in event.blocks], medium, GROUP_IDX, None, None)
            return self._shape("BlockRemoved", zip(_REMOVED_FIELDS, values, strict=True), _REMOVED_REQUIRED)
        return self._stored(event, medium, lmcache)

    def block_hash(self, block: int, *, lmcache: bool = False) -> bytes | int:
        """The hash published for an emulator block (see the module's docstring)."""
        raw = block.to_bytes(8, "big")
        if lmcache:
            digest = hashlib.sha256(_LMCACHE_SALT + raw).digest()
            return int.from_bytes(digest[:8], "big") if self.int_hashes else digest
        return block if self.int_hashes else hashlib.sha256(raw).digest()

    def _stored(self, event: Stored, medium: str, lmcache: bool) -> Any:
        hashes = [self.block_hash(b, lmcache=lmcache) for b in event.blocks]
        parent = None if event.parent is None else self.block_hash(event.parent, lmcache=lmcache)
        cpu_vllm = event.tier == MEDIUM_CPU and not lmcache
        values = (hashes, parent, list(event.token_ids), self.block_size, None, medium, None,
                  None if lmcache else [None] * len(hashes), None if lmcache else GROUP_IDX,
                  SPEC_KIND if cpu_vllm else None, None, None, None, None, None)
        return self._shape("BlockStored", zip(_STORED_FIELDS, values, strict=True), _STORED_REQUIRED)

    def _shape(self, tag: str, fields: Iterable[tuple[str, Any]], required: int) -> Any:
        """msgspec's layout of a tagged struct whose defaults are all None: a map without them
        (its header sized for every field), or the array of every field."""
        pairs = list(fields)
        if self.wire is Wire.ARRAY:
            return [tag, *(v for _, v in pairs)]
        sent = [("type", tag), *((k, v) for i, (k, v) in enumerate(pairs) if i < required or v is not None)]
        if len(pairs) + 1 <= _FIXMAP_MAX:
            return dict(sent)
        body = b"".join(_encode(k) + _encode(v) for k, v in sent)
        return msgspec.Raw(b"\xde" + len(sent).to_bytes(2, "big") + body)  # map16, as msgspec writes it
