"""A stream's verdict against its twin, on crafted streams: each defect is counted where it must be."""

from __future__ import annotations

import math

import orjson
import pytest

from benchmarks.chaos.plan import CREATED
from benchmarks.chaos.tally import FAILED, OK, TRUNCATED, Observed, Tally, classify, p99, total
from benchmarks.chaos.workload import Twin, twin_of

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 6,
        "temperature": 0, "stream": True}
TWIN = twin_of(BODY, "rid-1", CREATED)


def _chunk(content: str | None = None, finish: str | None = None, *, twin: Twin = TWIN, **head) -> bytes:
    delta = {"content": content} if content is not None else {"role": "assistant", "content": ""}
    event = {"id": twin.id, "object": "chat.completion.chunk", "created": twin.created, "model": twin.model,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **head}
    return b"data: " + orjson.dumps(event) + b"\n\n"


def _stream(text: str, finish: str | None = "length", done: bool = True, usage: int | None = None) -> bytes:
    words = [text[i:i + 4] for i in range(0, len(text), 4)]
    out = _chunk() + b"".join(_chunk(w) for w in words[:-1])
    out += _chunk(words[-1], finish) if words else b""
    if usage is not None:
        out += b"data: " + orjson.dumps({"id": TWIN.id, "model": TWIN.model, "created": TWIN.created,
                                         "choices": [], "usage": {"completion_tokens": usage}}) + b"\n\n"
    return out + (b"data: [DONE]\n\n" if done else b"")


def _ok(body: bytes, error: str = "") -> Observed:
    return Observed(status=200, body=body, error=error, ttft_s=0.1)


def test_the_twin_is_what_the_emulator_generates():
    """The twin's id follows x-request-id, its text has max_tokens 4-byte tokens, finish `length`."""
    assert TWIN.id == "chatcmpl-rid-1" and TWIN.tokens == 6 and len(TWIN.text) == 24
    assert TWIN.finish_reason == "length" and TWIN.created == CREATED


def test_a_complete_identical_stream_is_ok():
    verdict = classify(_ok(_stream(TWIN.text, usage=6)), TWIN)
    assert (verdict.outcome, verdict.mismatch, verdict.tokens) == (OK, False, 6), verdict.reason


@pytest.mark.parametrize(("body", "error", "reason"), [
    (_stream(TWIN.text, done=False), "", "lacks [DONE]"),
    (_stream(TWIN.text, finish=None), "", "lacks finish_reason"),
    (_stream(TWIN.text[:12], finish=None, done=False), "ClientPayloadError: reset",
     "lacks finish_reason and [DONE]"),
    (_stream(TWIN.text[:8], finish="abort"), "", "2 of 6 tokens"),
    (_stream(TWIN.text), "SocketTimeoutError", "SocketTimeoutError"),
])
def test_a_200_stream_cut_short_is_truncated(body, error, reason):
    """No [DONE], no finish chunk, fewer tokens than the twin (vLLM's abort), or a client-side
    error after the head: truncated, not a mismatch (what came is the twin's prefix)."""
    verdict = classify(_ok(body, error), TWIN)
    assert verdict.outcome == TRUNCATED and not verdict.mismatch and reason in verdict.reason


def test_an_sse_error_event_fails_the_stream_even_after_tokens():
    """The router's mid-stream error event (then its end) is a failure."""
    body = _stream(TWIN.text[:8], finish=None, done=False) + \
        b'data: {"error": {"message": "engine failed mid-stream", "code": 502}}\n\n'
    verdict = classify(_ok(body), TWIN)
    assert verdict.outcome == FAILED and "engine failed mid-stream" in verdict.reason


@pytest.mark.parametrize("seen", [Observed(status=503, body=b'{"error": {}}'),
                                  Observed(status=None, error="ClientConnectorError: refused")])
def test_no_200_is_a_failure(seen):
    assert classify(seen, TWIN).outcome == FAILED


@pytest.mark.parametrize("body", [
    _stream("x" + TWIN.text[1:]),  # other content
    _stream(TWIN.text, finish="stop"),  # other finish reason
    _stream(TWIN.text, usage=5),  # usage disagrees
    _chunk() + _chunk(TWIN.text, "length", created=CREATED + 1) + b"data: [DONE]\n\n",  # other created
    _chunk() + _chunk(TWIN.text[:4], "length") + _chunk(TWIN.text[4:], "length") + b"data: [DONE]\n\n",
    _stream(TWIN.text) + _chunk("more"),  # events after [DONE]
])
def test_anything_other_than_the_twin_is_a_mismatch(body):
    """Content, finish_reason, usage, created, a second finish chunk, data after [DONE]."""
    assert classify(_ok(body), TWIN).mismatch


def test_a_cut_stream_with_wrong_content_is_truncated_and_a_mismatch():
    verdict = classify(_ok(_stream("zzzz", finish=None, done=False)), TWIN)
    assert verdict.outcome == TRUNCATED and verdict.mismatch


def test_the_line_has_the_required_fields_then_the_extras_and_total_adds_up():
    """`NAME requests N failed F truncated T migrated M p99_ttft_s X twin_mismatch K ...`."""
    a, b = Tally("a"), Tally("b", migrated=2)
    for seen in (_ok(_stream(TWIN.text)), Observed(status=502), _ok(_stream(TWIN.text, done=False))):
        a.add(seen, classify(seen, TWIN))
    b.add(_ok(_stream("zzzz" * 6)), classify(_ok(_stream("zzzz" * 6)), TWIN))
    a.extra["engine_exits"] = "0,0"
    assert a.line() == "a requests 3 failed 1 truncated 1 migrated 0 p99_ttft_s 0.100 twin_mismatch 0 " \
                       "engine_exits 0,0"
    assert total([a, b]).line() == "TOTAL requests 4 failed 1 truncated 1 migrated 2 p99_ttft_s 0.100 " \
                                   "twin_mismatch 1"


def test_p99_is_nearest_rank():
    assert p99([float(i) for i in range(1, 101)]) == 99.0 and p99([3.0]) == 3.0 and math.isnan(p99([]))
