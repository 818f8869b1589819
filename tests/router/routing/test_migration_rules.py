"""The pure part of mid-stream migration: reading back what a stream sent, building the
continuation request, splicing the continuation's events; and passive ejection's arithmetic."""

from __future__ import annotations

import orjson
import pytest

from router.routing.ejection import Ejector
from router.routing.migration import Splice, Streamed, continuation, read_stream, unmigratable
from router.settings import EjectionSettings


def _chat_event(content: str | None, *, role: bool = False, finish: str | None = None,
                rid: str = "chatcmpl-a", created: int = 100) -> bytes:
    delta: dict[str, object] = {"content": content}
    if role:
        delta = {"role": "assistant", "content": content}
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return b"data: " + orjson.dumps({"id": rid, "object": "chat.completion.chunk", "created": created,
                                     "model": "m", "choices": [choice]}) + b"\n\n"


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 10}


def test_read_stream_counts_text_events_and_sees_ends() -> None:
    sent = _chat_event("", role=True) + _chat_event(" the") + _chat_event(" and")
    seen = read_stream(sent, chat=True)
    assert (seen.text, seen.tokens, seen.id, seen.created) == (" the and", 2, "chatcmpl-a", 100)
    assert not (seen.finished or seen.done or seen.error)
    ended = read_stream(sent + _chat_event(" one", finish="length") + b"data: [DONE]\n\n", chat=True)
    assert ended.finished and ended.done and ended.tokens == 3
    errored = read_stream(sent + b'data: {"error": {"message": "x", "code": 500}}\n\n', chat=True)
    assert errored.error
    reasoning = b'data: {"id":"x","choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}\n\n'
    assert read_stream(reasoning, chat=True).unsupported == "reasoning content"


def test_chat_continuation_appends_an_open_assistant_message_and_lowers_the_budget() -> None:
    seen = Streamed(text=" the and", tokens=2)
    body = continuation({**CHAT, "min_tokens": 5}, True, seen)
    assert isinstance(body, dict)
    assert body["messages"][-1] == {"role": "assistant", "content": " the and"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["max_tokens"] == 8 and body["min_tokens"] == 3
    assert CHAT["messages"] == [{"role": "user", "content": "hi"}]  # the client's request is untouched
    already = {**CHAT, "messages": [*CHAT["messages"], {"role": "assistant", "content": "Once"}],
               "continue_final_message": True, "add_generation_prompt": False, "max_completion_tokens": 4}
    body = continuation(already, True, seen)
    assert isinstance(body, dict)
    assert body["messages"][-1]["content"] == "Once the and" and len(body["messages"]) == 2
    assert body["max_completion_tokens"] == 2


def test_completion_continuation_extends_the_prompt_with_vllms_default_budget() -> None:
    seen = Streamed(text=" x y", tokens=2)
    body = continuation({"model": "m", "prompt": "p", "stream": True}, False, seen)
    assert isinstance(body, dict) and body["prompt"] == "p x y"
    assert body["max_tokens"] == 14  # vLLM's CompletionRequest default is 16
    assert continuation({"model": "m", "prompt": "p", "max_tokens": 2}, False, seen) == \
        "the token budget is used up"


@pytest.mark.parametrize(("payload", "chat", "reason"), [
    ({**CHAT, "n": 2}, True, "several choices (n / best_of)"),
    ({**CHAT, "logprobs": True}, True, "logprobs"),
    ({**CHAT, "tools": [{"type": "function"}]}, True, "tools"),
    ({**CHAT, "tools": [{"type": "function"}], "tool_choice": "none"}, True, None),
    ({**CHAT, "response_format": {"type": "json_object"}}, True, "structured output"),
    ({**CHAT, "response_format": {"type": "text"}}, True, None),
    ({"prompt": [1, 2, 3]}, False, "a prompt that is not one string"),
    ({"prompt": "x", "echo": True}, False, "echo / return_token_ids"),
    ({"prompt": "x"}, False, None),
])
def test_what_cannot_be_continued_is_named(payload: dict, chat: bool, reason: str | None) -> None:
    assert unmigratable(payload, chat) == reason


def test_splice_drops_the_reopening_restamps_id_and_created_and_restates_usage() -> None:
    first = read_stream(_chat_event("", role=True) + _chat_event(" a") + _chat_event(" b"), chat=True)
    splice = Splice(first, chat=True)
    theirs = dict(rid="chatcmpl-b", created=999)
    stream = (_chat_event("", role=True, **theirs) + _chat_event(" c", **theirs)
              + _chat_event(" d", finish="length", **theirs))
    usage = b'data: {"id":"chatcmpl-b","object":"chat.completion.chunk","created":999,"model":"m",' \
            b'"choices":[],"usage":{"prompt_tokens":12,"total_tokens":14,"completion_tokens":2}}\n\n'
    whole = stream + usage + b"data: [DONE]\n\n"
    out = b"".join(splice.feed(whole[i:i + 7]) for i in range(0, len(whole), 7))  # cut anywhere
    assert out == (_chat_event(" c") + _chat_event(" d", finish="length")
                   + b'data: {"id":"chatcmpl-a","object":"chat.completion.chunk","created":100,"model":"m",'
                     b'"choices":[],"usage":{"prompt_tokens":10,"total_tokens":14,"completion_tokens":4}}\n\n'
                   + b"data: [DONE]\n\n")


def test_ejection_needs_repeated_failures_in_the_window_and_caps_at_half() -> None:
    rule = EjectionSettings(failures=3, window_s=30, min_out_s=30, max_out_fraction=0.5)
    ej = Ejector(rule)
    assert not ej.record("a", 0, members=4, out=0) and not ej.record("a", 1, members=4, out=0)
    assert not ej.record("a", 40, members=4, out=0)  # the first two fell out of the window
    assert not ej.record("a", 41, members=4, out=0)
    assert ej.record("a", 42, members=4, out=0)
    assert not ej.may_return("a", 50) and ej.may_return("a", 72)
    for t in (0, 1, 2):
        ejected = ej.record("b", 100 + t, members=4, out=2)
    assert not ejected  # two of four out already: a third would leave under half
    solo = Ejector(rule)
    assert [solo.record("solo", t, members=1, out=0) for t in (0, 1, 2)] == [False, False, False]


def test_engine_failure_finds_5xx_error_events_and_aborts_not_client_errors_or_text() -> None:
    from router.routing.migration import engine_failure
    ok = _chat_event(" a") + _chat_event(' say "abort" and "error"')
    assert engine_failure(ok) is None
    crash = b'data: {"error": {"message": "EngineCore died", "type": "InternalServerError", "code": 500}}\n\n'
    assert engine_failure(ok + crash + b"data: [DONE]\n\n") == len(ok)
    bad_request = b'data: {"error": {"message": "bad", "type": "BadRequestError", "code": 400}}\n\n'
    assert engine_failure(ok + bad_request) is None
    aborted = _chat_event("", finish="abort")
    assert engine_failure(ok + aborted) == len(ok)
