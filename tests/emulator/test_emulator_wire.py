"""vLLM's OpenAI-compatible wire format: request validation and chunk shapes (pure)."""

from __future__ import annotations

import orjson
import pytest

from emulator.config import EngineConfig
from emulator.errors import WireError
from emulator.generation import answer_text
from emulator.wire import StreamEncoder, parse_embedding, parse_generation
from router.routing.prompt import count_tokens

CONFIG = EngineConfig(model="m", gpu_cache_tokens=10_000, default_max_tokens=50)


def _parse(body, kind="chat"):
    return parse_generation(orjson.dumps(body), kind, CONFIG)


def test_chat_request_is_parsed_with_rendered_prompt_and_options():
    """Messages are rendered with roles and the generation prompt; max_completion_tokens, stream,
    usage and ignore_eos are read."""
    parsed = _parse({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                     "max_completion_tokens": 7, "stream_options": {"include_usage": True},
                     "ignore_eos": True})
    assert parsed.prompt == "<|user|>\nhi\n<|assistant|>\n"
    assert parsed.prompt_tokens == count_tokens(parsed.prompt)
    assert (parsed.max_tokens, parsed.stream) == (7, True)
    assert parsed.include_usage and parsed.ignore_eos


def test_missing_max_tokens_uses_the_default():
    """Without max_tokens a chat answer gets the engine's default output length, a completion
    vLLM's default of 16 (`CompletionRequest.max_tokens`)."""
    assert _parse({"messages": [{"role": "user", "content": "hello"}]}, "chat").max_tokens == 50
    assert _parse({"prompt": "hello"}, "completion").max_tokens == 16


@pytest.mark.parametrize(("raw", "status", "param"), [
    (b"{not json", 400, None),
    (b"[1]", 400, None),
    (orjson.dumps({"model": "m"}), 400, "messages"),
    (orjson.dumps({"model": "other", "messages": [{"role": "user", "content": "x"}]}), 404, "model"),
    (orjson.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}), 400, "max_tokens"),
    (orjson.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 10_000}), 400, "max_tokens"),
    (orjson.dumps({"messages": [{"role": "user", "content": "x" * 50_000}]}), 400, "messages"),
    (orjson.dumps({"messages": [{"role": "user", "content": "x"}], "stream": "maybe"}), 400, "stream"),
    (orjson.dumps({"messages": [{"role": "user", "content": "x"}], "n": 2}), 400, "n"),
    (orjson.dumps({"messages": [{"role": "assistant", "content": "x"}], "continue_final_message": True,
                   "add_generation_prompt": True}), 400, None),
])
def test_bad_requests_get_vllm_like_errors(raw, status, param):
    """Bad JSON, missing fields, unknown model and over-long requests get the right status and param."""
    with pytest.raises(WireError) as info:
        parse_generation(raw, "chat", CONFIG)
    assert (info.value.status, info.value.param) == (status, param)


def test_embedding_inputs():
    """Embeddings accept a string or a list of strings; anything else is a 400."""
    assert parse_embedding(b'{"input": "a"}', CONFIG) == ("m", ["a"])
    with pytest.raises(WireError):
        parse_embedding(b'{"input": 3}', CONFIG)


def _events(data: bytes) -> list[dict]:
    parts = data.split(b"\n\n")
    assert parts[-1] == b"" and all(p.startswith(b"data: ") for p in parts[:-1])
    return [orjson.loads(p[6:]) for p in parts[:-1]]


def test_chat_chunks_have_the_openai_shape():
    """Role chunk, token chunks from the template equal to real JSON, finish on the last, usage."""
    enc = StreamEncoder("chat", "chatcmpl-1", 123, "m")
    words = [" the", " and", " one"]
    role, tokens, usage = _events(enc.role()), _events(enc.tokens(words, "length")), _events(enc.usage(9, 3))
    assert role[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [t["choices"][0]["delta"]["content"] for t in tokens] == [" the", " and", " one"]
    assert [t["choices"][0]["finish_reason"] for t in tokens] == [None, None, "length"]
    assert all(t["object"] == "chat.completion.chunk" and t["id"] == "chatcmpl-1" and t["created"] == 123
               for t in tokens)
    assert usage[0]["choices"] == [] and usage[0]["usage"] == {"prompt_tokens": 9, "total_tokens": 12,
                                                               "completion_tokens": 3}


def test_completion_chunks_carry_text():
    """Completion chunks are text_completion objects with choices[].text; no role chunk."""
    enc = StreamEncoder("completion", "cmpl-1", 1, "m")
    chunks = _events(enc.tokens([" and", " one"], None))
    assert enc.role() == b""
    assert [c["choices"][0]["text"] for c in chunks] == [" and", " one"]
    assert chunks[0]["object"] == "text_completion"


def test_answer_text_counts_as_its_tokens():
    """Generated text re-counts to the same number of tokens (4 bytes per token)."""
    assert count_tokens(answer_text("some prompt", 100)) == 100


def test_an_abort_is_a_chunk_of_its_own_with_no_token():
    """A finish with no token left (vLLM's abort) is one chunk with empty content."""
    chunk = _events(StreamEncoder("chat", "chatcmpl-1", 1, "m").tokens([], "abort"))
    assert chunk[0]["choices"][0]["delta"] == {"content": ""}
    assert chunk[0]["choices"][0]["finish_reason"] == "abort"


@pytest.mark.parametrize(("body", "salt"), [
    ({}, 0), ({"temperature": 0}, 0), ({"temperature": 0.7, "seed": 5}, 5), ({"temperature": 0.7}, None),
])
def test_sampling_salt_follows_temperature_and_seed(body, salt):
    """Greedy unless the request samples; a sampled request uses its seed, else a random salt."""
    parsed = _parse({"messages": [{"role": "user", "content": "x"}], **body})
    assert parsed.salt == salt
