"""The prompt as the engine sees it, cut into fixed blocks with chained hashes.

Shared by the router's prefix index and the emulator's prefix cache so both speak of the
same blocks. Pure: no I/O, no clock, deterministic across processes (no `hash()`, whose
seed differs per process), so several router workers place a conversation identically.

Tokenisation is approximate on purpose (the router has no tokenizer on its hot path):
one token per `BYTES_PER_TOKEN` UTF-8 bytes, about what Llama-3 BPE gives on English text.
A block is `BLOCK_TOKENS` tokens, vLLM's default prefix-caching block size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import xxhash

BYTES_PER_TOKEN: Final = 4
BLOCK_TOKENS: Final = 16
BLOCK_BYTES: Final = BYTES_PER_TOKEN * BLOCK_TOKENS
_ROOT_SEED: Final = 0x9E3779B97F4A7C15
_hash = xxhash.xxh3_64_intdigest


def _content_text(content: Any) -> str:
    """Text of one message's content: a string, or OpenAI's list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, Mapping)
        )
    return str(content)


def render_chat(messages: Sequence[Mapping[str, Any]]) -> str:
    """Chat messages rendered with their roles, in order, as a chat template would."""
    return "".join(
        f"<|{m.get('role', 'user')}|>\n{_content_text(m.get('content'))}\n" for m in messages
    )


def prompt_text(body: Mapping[str, Any]) -> str:
    """The prompt of an OpenAI request body: chat messages, a completion prompt or input."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return render_chat([m for m in messages if isinstance(m, Mapping)])
    prompt = body.get("prompt", body.get("input", ""))
    if isinstance(prompt, list):
        return "".join(p for p in prompt if isinstance(p, str))
    return prompt if isinstance(prompt, str) else ""


def count_tokens(data: bytes | str) -> int:
    """Approximate token count: one token per `BYTES_PER_TOKEN` UTF-8 bytes, rounded up."""
    raw = data.encode() if isinstance(data, str) else data
    return -(-len(raw) // BYTES_PER_TOKEN)


def block_hashes(data: bytes | str, block_bytes: int = BLOCK_BYTES, salt: str | None = None) -> list[int]:
    """Chained hashes of the full blocks of `data`: hash i identifies the whole prefix
    up to the end of block i, so equal hashes mean equal prefixes (up to collisions). A `salt`
    (a LoRA adapter's name) seeds the chain, so the same text under another adapter or the
    base model shares no hash, as vLLM keys every cached block by its adapter."""
    raw = data.encode() if isinstance(data, str) else data
    # each block's hash seeds the next (a comprehension: ~15 % faster than a loop)
    seed = _ROOT_SEED if salt is None else _hash(salt.encode(), _ROOT_SEED)
    return [seed := _hash(raw[start : start + block_bytes], seed)
            for start in range(0, len(raw) - block_bytes + 1, block_bytes)]


def blocks_to_tokens(blocks: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Tokens covered by `blocks` full blocks."""
    return blocks * block_bytes // BYTES_PER_TOKEN


def tokens_to_blocks(tokens: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Full blocks that fit in `tokens` tokens of cache (rounded down)."""
    return tokens * BYTES_PER_TOKEN // block_bytes
