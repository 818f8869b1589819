"""The emulator's /tokenize and /detokenize: as many tokens as it bills, reversible, vLLM's
answer fields, and 400s naming the field for bodies vLLM refuses."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.errors import WireError
from emulator.tokenize import decode, detokenize_body, encode, tokenize_body, whole_token_ids
from router.routing.prompt import count_tokens, prompt_text

TEXTS = ["", "a", "abcd", "hello world", "héllo wörld 🙂 " * 7, "a\ud800b"]


@pytest.mark.parametrize("text", TEXTS)
def test_tokens_count_as_billed_and_decode_back(text: str) -> None:
    """encode gives count_tokens ids and decode gives the text back."""
    ids = encode(text)
    assert len(ids) == count_tokens(text.encode("utf-8", "surrogatepass"))
    assert decode(ids) == text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def test_tokenize_answers_vllms_fields_for_a_prompt_and_for_messages() -> None:
    """{count, max_model_len, tokens, token_strs}; chat messages tokenize as the chat prompt."""
    answer = orjson.loads(tokenize_body(b'{"model": "m", "prompt": "hello world"}', 4096))
    assert answer == {"count": 3, "max_model_len": 4096, "tokens": encode("hello world"), "token_strs": None}
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    assert orjson.loads(tokenize_body(orjson.dumps(chat), 8))["tokens"] == encode(prompt_text(chat))
    assert orjson.loads(detokenize_body(orjson.dumps({"tokens": encode("hello world")[:2]}))) == {
        "prompt": "hello wo"}


@pytest.mark.parametrize(("call", "raw", "param"), [
    (lambda b: tokenize_body(b, 8), b'{"model": "m"}', "prompt"),
    (lambda b: tokenize_body(b, 8), b"[1]", None),
    (detokenize_body, b'{"tokens": [-1]}', "tokens"),
    (detokenize_body, b'{"tokens": "1 2"}', "tokens"),
    (detokenize_body, b'{"tokens": [1.5]}', "tokens"),
])
def test_bodies_vllm_refuses_are_400_naming_the_field(call, raw: bytes, param: str | None) -> None:  # type: ignore[no-untyped-def]
    """A missing prompt, a non-object body, negative or non-integer token ids: 400."""
    with pytest.raises(WireError) as err:
        call(raw)
    assert err.value.status == 400 and err.value.param == param


@given(st.text(max_size=200))
def test_whole_token_ids_are_encode_without_a_short_last_token(text):
    """The KV events' fast path gives `encode`'s ids of every whole 4-byte token."""
    raw = len(text.encode("utf-8", "surrogatepass"))
    assert whole_token_ids(text) == tuple(encode(text)[:raw // 4])
