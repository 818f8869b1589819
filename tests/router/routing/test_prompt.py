"""The shared prompt model: rendering, approximate tokens and chained block hashes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.routing.prompt import (
    BLOCK_BYTES,
    block_hashes,
    blocks_to_tokens,
    count_tokens,
    prompt_text,
    render_chat,
    tokens_to_blocks,
)


def test_render_chat_keeps_roles_in_order() -> None:
    """Chat messages render with their roles, in order."""
    text = render_chat([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    assert text == "<|system|>\nbe brief\n<|user|>\nhi\n"


def test_prompt_text_reads_typed_parts_and_completion_prompts() -> None:
    """Typed content parts, completion prompts and embedding inputs all yield their text."""
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    chat = {"messages": [{"role": "user", "content": parts}]}
    assert prompt_text(chat) == "<|user|>\nab\n"
    assert prompt_text({"prompt": "xyz"}) == "xyz"
    assert prompt_text({"prompt": ["x", "y"]}) == "xy"
    assert prompt_text({"input": "emb"}) == "emb"
    assert prompt_text({"prompt": 3}) == ""


def test_count_tokens_rounds_up() -> None:
    """Four UTF-8 bytes make one token, partial tokens round up."""
    assert [count_tokens("a" * n) for n in (0, 1, 4, 5)] == [0, 1, 1, 2]


def test_block_conversions_round_trip() -> None:
    """Token/block conversions agree with the block size."""
    assert tokens_to_blocks(blocks_to_tokens(7)) == 7
    assert blocks_to_tokens(1) == BLOCK_BYTES // 4


@given(st.binary(max_size=600), st.binary(max_size=300))
def test_block_hashes_identify_prefixes(prefix: bytes, suffix: bytes) -> None:
    """Hashes of a prompt start with the hashes of any prefix of it, one per full block."""
    whole = block_hashes(prefix + suffix)
    assert len(whole) == len(prefix + suffix) // BLOCK_BYTES
    assert whole[: len(prefix) // BLOCK_BYTES] == block_hashes(prefix)


def test_block_hashes_differ_when_an_early_block_differs() -> None:
    """Chaining: a change in block 0 changes every later hash."""
    a = block_hashes(b"a" * BLOCK_BYTES + b"z" * BLOCK_BYTES)
    b = block_hashes(b"b" * BLOCK_BYTES + b"z" * BLOCK_BYTES)
    assert a[0] != b[0] and a[1] != b[1]


def test_an_adapter_salt_keys_every_block_apart_from_the_unsalted_chain() -> None:
    """The same text under a LoRA adapter shares no block hash with the base model's or another
    adapter's chain (vLLM keys cached blocks by adapter), and is stable for one adapter."""
    from router.routing.prompt import block_hashes as hashes

    text = b"x" * 4096
    base, sql, legal = hashes(text), hashes(text, salt="sql"), hashes(text, salt="legal")
    assert len(base) == len(sql) == len(legal) > 1
    assert not set(base) & set(sql) and not set(sql) & set(legal)
    assert hashes(text, salt="sql") == sql
