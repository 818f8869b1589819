"""Decode vLLM's KV-cache event messages into typed events (pure: bytes in, values out).

One ZMQ message is three frames, `(topic, seq, payload)`: the topic as UTF-8, `seq` 8 bytes
big-endian, `payload` a msgpack `EventBatch` — the array `[ts, events, data_parallel_rank?]`.
Each event comes in either of vLLM's two encodings (`contracts.kv_events` has the source
references): a tagged map `{"type": "BlockStored", "block_hashes": ..., ...}` (vLLM 0.33, since
PR #42892) or a positional array `["BlockStored", block_hashes, parent, token_ids, block_size,
lora_id, medium, lora_name, ...]` (earlier releases). Both decode to the same values, fields
absent from the wire taking their defaults. `medium` is read case-insensitively into a `Tier`:
vLLM's "GPU" / "CPU" / "STORAGE", LMCache's republished "cpu" (flagged `from_lmcache`: those
blocks are LMCache chunks, hashed by LMCache, not vLLM blocks); no medium (releases before
vLLM added it) is the GPU.

A frame or payload that is not this format raises `KvEventDecodeError` naming the part, the
value and what was expected; one event of an unknown type or medium inside a good batch is
skipped and named in `KvEventBatch.skipped`, so a field or event vLLM adds later costs that
event, not the batch.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from contracts.kv_events import MEDIUM_CPU, MEDIUM_GPU, MEDIUM_STORAGE, TOPIC_PREFIX

SEQ_BYTES: Final = 8
LMCACHE_MEDIUM: Final = "cpu"
"""LMCache 0.5.6's spelling of its CPU tier (`lmcache/v1/cache_engine.py`, `CacheStoreEvent`)."""

BlockHash = bytes | int
"""vLLM's `ExternalBlockHash`: the digest's bytes, or its low 64 bits as an int."""


class KvEventDecodeError(ValueError):
    """A message that is not a vLLM KV-event message; the text names the part and the value."""

    def __init__(self, part: str, value: Any, expected: str) -> None:
        shown = repr(value)
        super().__init__(f"{part} {expected} (got {shown[:120]}{'...' if len(shown) > 120 else ''})")
        self.part = part


class Tier(enum.Enum):
    """Where a block lives, as vLLM names the medium."""

    GPU = MEDIUM_GPU
    CPU = MEDIUM_CPU
    STORAGE = MEDIUM_STORAGE


@dataclass(frozen=True, slots=True)
class BlockStored:
    """Blocks an engine now holds: a chain, each block the parent of the next."""

    block_hashes: tuple[BlockHash, ...]
    parent_block_hash: BlockHash | None
    """The block before the first one (None: the chain starts the prompt)."""
    token_ids: tuple[int, ...]
    """The blocks' tokens, `block_size` per hash (LMCache adds the next chunk's first token)."""
    block_size: int
    tier: Tier
    from_lmcache: bool = False
    """Republished from LMCache (medium "cpu"): LMCache chunk hashes, chunk-sized blocks."""
    lora_name: str | None = None
    group_idx: int | None = None
    """The KV-cache group (hybrid models have several; None: the only one)."""


@dataclass(frozen=True, slots=True)
class BlockRemoved:
    """Blocks an engine dropped from one tier."""

    block_hashes: tuple[BlockHash, ...]
    tier: Tier
    from_lmcache: bool = False
    group_idx: int | None = None


@dataclass(frozen=True, slots=True)
class AllBlocksCleared:
    """The engine's prefix cache was reset: it holds nothing any more."""


KvEvent = BlockStored | BlockRemoved | AllBlocksCleared


@dataclass(frozen=True, slots=True)
class KvEventBatch:
    """One message: one engine step's events, in order."""

    topic: str
    seq: int
    ts: float
    events: tuple[KvEvent, ...]
    data_parallel_rank: int | None = None
    skipped: tuple[str, ...] = ()
    """Why each skipped event was skipped (an unknown type or medium)."""


@dataclass(frozen=True, slots=True)
class EngineTopic:
    """What a topic `kv@<host>:<port>@<model>` names (`contracts.kv_events.topic`)."""

    host: str
    port: int
    model: str


def parse_topic(topic: str) -> EngineTopic:
    """The engine a topic names; `KvEventDecodeError` if it is not `kv@<host>:<port>@<model>`."""
    parts = topic.split("@", 2)
    expected = f"must read {TOPIC_PREFIX}@<host>:<port>@<model>"
    if len(parts) != 3 or parts[0] != TOPIC_PREFIX or not parts[2]:
        raise KvEventDecodeError("topic", topic, expected)
    host, _, port = parts[1].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise KvEventDecodeError("topic", topic, expected)
    return EngineTopic(host=host.strip("[]"), port=int(port), model=parts[2])


def decode_seq(frame: bytes) -> int:
    """The batch's sequence number (8 bytes big-endian, unsigned)."""
    if len(frame) != SEQ_BYTES:
        raise KvEventDecodeError("seq frame", frame, f"must be {SEQ_BYTES} bytes")
    return int.from_bytes(frame, "big")


def decode_message(frames: Sequence[bytes]) -> KvEventBatch:
    """A `(topic, seq, payload)` message as the engine's PUB socket sends it."""
    if len(frames) != 3:
        raise KvEventDecodeError("message", [bytes(f[:16]) for f in frames], "must have 3 frames")
    topic_frame, seq_frame, payload = frames
    try:
        topic = bytes(topic_frame).decode("utf-8")
    except UnicodeDecodeError:
        raise KvEventDecodeError("topic frame", topic_frame, "must be UTF-8") from None
    return decode_payload(bytes(payload), topic=topic, seq=decode_seq(bytes(seq_frame)))


def decode_payload(payload: bytes, *, topic: str = "", seq: int = 0) -> KvEventBatch:
    """One msgpack `EventBatch` (`[ts, events, data_parallel_rank?]`; a map form is read too)."""
    try:
        raw = msgspec.msgpack.decode(payload)
    except msgspec.DecodeError as exc:
        raise KvEventDecodeError("payload", payload[:32], f"must be msgpack ({exc})") from None
    ts, events, rank = _batch_fields(raw)
    decoded: list[KvEvent] = []
    skipped: list[str] = []
    for index, event in enumerate(events):
        try:
            decoded.append(decode_event(event))
        except _Skip as skip:
            skipped.append(f"events[{index}]: {skip}")
    return KvEventBatch(topic=topic, seq=seq, ts=ts, events=tuple(decoded),
                        data_parallel_rank=rank, skipped=tuple(skipped))


def _batch_fields(raw: Any) -> tuple[float, list[Any], int | None]:
    if isinstance(raw, Mapping):
        raw = [raw.get("ts"), raw.get("events"), raw.get("data_parallel_rank")]
    if not isinstance(raw, list) or not 2 <= len(raw) <= 3:
        raise KvEventDecodeError("payload", raw, "must be an EventBatch [ts, events, data_parallel_rank?]")
    ts, events, rank = (*raw, None) if len(raw) == 2 else raw
    _check(isinstance(ts, int | float) and not isinstance(ts, bool), "batch ts", ts, "must be a number")
    _check(isinstance(events, list), "batch events", events, "must be a list")
    _check(rank is None or _is_int(rank), "batch data_parallel_rank", rank, "must be an int or absent")
    return float(ts), events, rank


class _Skip(Exception):
    """An event this decoder does not know (a type or medium from a later vLLM)."""


def decode_event(raw: Any) -> KvEvent:
    """One event in either encoding (tagged map or positional array)."""
    if isinstance(raw, Mapping):
        tag, fields = raw.get("type"), raw
    elif isinstance(raw, list) and raw:
        tag = raw[0]
        names = _POSITIONS.get(tag, ()) if isinstance(tag, str) else ()
        fields = dict(zip(names, raw[1:], strict=False))
    else:
        raise KvEventDecodeError("event", raw, "must be a tagged map or a tagged array")
    builder = _BUILDERS.get(tag) if isinstance(tag, str) else None
    if builder is None:
        raise _Skip(f"unknown event type {tag!r}")
    return builder(fields)


def _stored(f: Mapping[str, Any]) -> BlockStored:
    tier, lmcache = _tier(f.get("medium"))
    size: Any = f.get("block_size")
    _check(_is_int(size) and size > 0, "BlockStored.block_size", size, "must be a positive int")
    return BlockStored(
        block_hashes=_hashes("BlockStored", f.get("block_hashes")),
        parent_block_hash=_parent(f.get("parent_block_hash")),
        token_ids=_ints("BlockStored.token_ids", f.get("token_ids")),
        block_size=size, tier=tier, from_lmcache=lmcache,
        lora_name=_optional_str("BlockStored.lora_name", f.get("lora_name")),
        group_idx=_optional_int("BlockStored.group_idx", f.get("group_idx")),
    )


def _removed(f: Mapping[str, Any]) -> BlockRemoved:
    tier, lmcache = _tier(f.get("medium"))
    return BlockRemoved(block_hashes=_hashes("BlockRemoved", f.get("block_hashes")), tier=tier,
                        from_lmcache=lmcache,
                        group_idx=_optional_int("BlockRemoved.group_idx", f.get("group_idx")))


def _cleared(_: Mapping[str, Any]) -> AllBlocksCleared:
    return AllBlocksCleared()


_BUILDERS: Final[dict[str, Callable[[Mapping[str, Any]], KvEvent]]] = {
    "BlockStored": _stored, "BlockRemoved": _removed, "AllBlocksCleared": _cleared,
}
_POSITIONS: Final[dict[str, tuple[str, ...]]] = {
    # vLLM's field order (`vllm/distributed/kv_events.py`); fields were only ever appended
    "BlockStored": ("block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id", "medium",
                    "lora_name", "extra_keys", "group_idx"),
    "BlockRemoved": ("block_hashes", "medium", "group_idx"),
    "AllBlocksCleared": (),
}
_TIERS: Final = {tier.value: tier for tier in Tier}


def _tier(medium: Any) -> tuple[Tier, bool]:
    if medium is None:
        return Tier.GPU, False
    if not isinstance(medium, str) or medium.upper() not in _TIERS:
        raise _Skip(f"unknown medium {medium!r} (known: {', '.join(_TIERS)}, any case)")
    return _TIERS[medium.upper()], medium == LMCACHE_MEDIUM


def _hashes(event: str, value: Any) -> tuple[BlockHash, ...]:
    _check(isinstance(value, list) and bool(value) and all(_is_hash(h) for h in value),
           f"{event}.block_hashes", value, "must be a non-empty list of bytes or ints")
    return tuple(value)


def _parent(value: Any) -> BlockHash | None:
    _check(value is None or _is_hash(value), "BlockStored.parent_block_hash", value,
           "must be bytes, an int or None")
    return value


def _ints(part: str, value: Any) -> tuple[int, ...]:
    _check(isinstance(value, list) and all(_is_int(t) for t in value), part, value, "must be a list of ints")
    return tuple(value)


def _optional_int(part: str, value: Any) -> int | None:
    _check(value is None or _is_int(value), part, value, "must be an int or absent")
    return value


def _optional_str(part: str, value: Any) -> str | None:
    _check(value is None or isinstance(value, str), part, value, "must be a string or absent")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hash(value: Any) -> bool:
    return isinstance(value, bytes) or _is_int(value)


def _check(ok: bool, part: str, value: Any, expected: str) -> None:
    if not ok:
        raise KvEventDecodeError(part, value, expected)
