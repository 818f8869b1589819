"""The router's own block keys: chained hashes of token ids, `KV_BLOCK_SIZE` tokens a block (pure).

Why not the engines' block hashes: vLLM's cover only its own blocks, LMCache republishes chunk
hashes of its own over 256-token chunks (`contracts.kv_events`), and both depend on the engine's
hash algorithm and seed. Keys computed here from the token ids the events carry put every tier
of every engine in one key space, at one granularity: a 256-token LMCache chunk is 16 keys, a
vLLM block one. A request's prompt, tokenised as the engine tokenises it, gets the same keys
(`block_keys`), so the residency index can tell which of its leading blocks an engine holds.

Key i = xxh3-64 of the block's token ids as native uint32s, seeded with key i-1; the first block's
"key i-1" being a root derived from the LoRA adapter's name (blocks computed under an adapter
are not the base model's). Deterministic across processes; collisions (64-bit) are ignored.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Final

import xxhash

from contracts.kv_events import KV_BLOCK_SIZE

_ROOT: Final = xxhash.xxh3_64_intdigest(b"llm-stack kv root")


def root_key(lora_name: str | None = None) -> int:
    """The parent of a prompt's first block (per LoRA adapter; None: the base model)."""
    if lora_name is None:
        return _ROOT
    return xxhash.xxh3_64_intdigest(lora_name.encode("utf-8"), seed=_ROOT)


def next_key(parent: int, tokens: Sequence[int]) -> int:
    """The key of the block holding `tokens` after the block keyed `parent`."""
    try:
        data = array("I", tokens).tobytes()
    except OverflowError:  # not vocabulary ids (LMCache puts multimodal hashes in their place)
        data = ",".join(map(str, tokens)).encode("ascii")
    return xxhash.xxh3_64_intdigest(data, seed=parent)


def chain(parent: int, tokens: Sequence[int]) -> tuple[int, ...]:
    """Keys of the whole `KV_BLOCK_SIZE` blocks of `tokens` (a trailing partial block has none),
    chained from the block keyed `parent`."""
    keys = []
    for start in range(0, len(tokens) - KV_BLOCK_SIZE + 1, KV_BLOCK_SIZE):
        parent = next_key(parent, tokens[start:start + KV_BLOCK_SIZE])
        keys.append(parent)
    return tuple(keys)


def block_keys(tokens: Sequence[int], lora_name: str | None = None) -> tuple[int, ...]:
    """Keys of a prompt's whole blocks, as the engine tokenised it."""
    return chain(root_key(lora_name), tokens)
