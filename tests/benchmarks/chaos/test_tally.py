"""A stream's verdict against its twin, on crafted streams: each defect is counted where it must be."""

from __future__ import annotations

import math

import pytest

from benchmarks.chaos.plan import CREATED
from benchmarks.chaos.tally import FAILED, OK, TRUNCATED, Observed, Tally, classify, p99, total
from benchmarks.chaos.workload import twin_of
from emulator.wire import StreamEncoder

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 6,
        "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
TWIN = twin_of(BODY, "rid-1", CREATED)


ENCODER = StreamEncoder("chat", TWIN.id, CREATED, "m")
EVENTS = [e + b"\n\n" for e in TWIN.sse.split(b"\n\n") if e]  # role, 6 tokens, usage, [DONE]
DONE = b"data: [DONE]\n\n"


def _ok(body: bytes, error: str = "") -> Observed:
    return Observed(status=200, body=body, error=error, ttft_s=0.1)


def _words(count: int) -> list[str]:
    return [TWIN.text[i:i + 4] for i in range(0, 4 * count, 4)]


def test_the_twin_is_what_the_emulator_generates():
    """The twin's id follows x-request-id, its text has max_tokens 4-byte tokens, finish `length`;
    its body: the role chunk, one chunk per token, the usage chunk, [DONE]."""
    assert TWIN.id == "chatcmpl-rid-1" and TWIN.tokens == 6 and len(TWIN.text) == 24
    assert TWIN.finish_reason == "length" and TWIN.created == CREATED
    assert len(EVENTS) == 9 and EVENTS[-1] == DONE and b'"finish_reason":"length"' in EVENTS[6]


def test_a_stream_byte_identical_to_its_twin_is_ok():
    verdict = classify(_ok(TWIN.sse), TWIN)
    assert (verdict.outcome, verdict.mismatch, verdict.tokens) == (OK, False, 6), verdict.reason


@pytest.mark.parametrize(("body", "error", "reason"), [
    (b"".join(EVENTS[:-1]), "", "lacks [DONE]"),
    (b"".join(EVENTS[:6]) + DONE, "", "lacks finish_reason"),
    (b"".join(EVENTS[:4]), "ClientPayloadError: reset", "lacks finish_reason and [DONE]"),
    (ENCODER.role() + ENCODER.tokens(_words(2), None) + ENCODER.tokens([], "abort") + DONE, "",
     "2 of 6 tokens"),
    (TWIN.sse, "SocketTimeoutError", "SocketTimeoutError"),
])
def test_a_200_stream_cut_short_is_truncated(body, error, reason):
    """No [DONE], no finish chunk, fewer tokens than the twin (vLLM's abort on SIGTERM), or a
    client-side error after the head: truncated, not a mismatch (what came is the twin's prefix)."""
    verdict = classify(_ok(body, error), TWIN)
    assert verdict.outcome == TRUNCATED and not verdict.mismatch and reason in verdict.reason, verdict


def test_an_sse_error_event_fails_the_stream_even_after_tokens():
    """The router's mid-stream error event (then its end) is a failure."""
    body = b"".join(EVENTS[:3]) + b'data: {"error": {"message": "engine failed mid-stream", "code": 502}}\n\n'
    verdict = classify(_ok(body), TWIN)
    assert verdict.outcome == FAILED and "engine failed mid-stream" in verdict.reason and not verdict.mismatch


@pytest.mark.parametrize("seen", [Observed(status=503, body=b'{"error": {}}'),
                                  Observed(status=None, error="ClientConnectorError: refused")])
def test_no_200_is_a_failure(seen):
    assert classify(seen, TWIN).outcome == FAILED


_OTHER_CREATED = StreamEncoder("chat", TWIN.id, CREATED + 1, "m")


@pytest.mark.parametrize("body", [
    TWIN.sse.replace(TWIN.text[:4].encode(), b" zzz", 1),  # other content
    TWIN.sse.replace(b'"length"', b'"stop"'),  # other finish reason
    TWIN.sse.replace(b'"completion_tokens":6', b'"completion_tokens":5'),  # usage disagrees
    b"".join(EVENTS[:3]) + ENCODER.role() + b"".join(EVENTS[3:]),  # a second role chunk (a visible break)
    b"".join(EVENTS[:-1]).replace(b'"prompt_tokens":', b'"prompt_tokens":1') + DONE,  # migrated prompt
    _OTHER_CREATED.role() + b"".join(EVENTS[1:]),  # other created
    TWIN.sse + EVENTS[3],  # data after [DONE]
])
def test_a_complete_stream_other_than_its_twin_byte_for_byte_is_a_mismatch(body):
    """Content, finish_reason, usage, an extra role chunk, created, data after [DONE]."""
    verdict = classify(_ok(body), TWIN)
    assert verdict.mismatch and "body differs" in verdict.reason, verdict


@pytest.mark.parametrize("body", [
    _OTHER_CREATED.role() + b"".join(EVENTS[1:3]),  # other created
    ENCODER.role() + ENCODER.tokens([" zzz"], None),  # other content
    b"".join(EVENTS[:3]) + ENCODER.role() + EVENTS[3],  # a second role chunk
    ENCODER.role() + ENCODER.tokens(_words(2), "length") + ENCODER.tokens([], "abort"),  # two finish chunks
])
def test_a_cut_stream_whose_part_differs_from_the_twin_is_truncated_and_a_mismatch(body):
    verdict = classify(_ok(body), TWIN)
    assert verdict.outcome == TRUNCATED and verdict.mismatch, verdict


def test_the_line_has_the_required_fields_then_the_extras_and_total_adds_up():
    """`NAME requests N failed F truncated T migrated M p99_ttft_s X twin_mismatch K ...`."""
    a, b = Tally("a"), Tally("b", migrated=2)
    for seen in (_ok(TWIN.sse), Observed(status=502), _ok(b"".join(EVENTS[:-1]))):
        a.add(seen, classify(seen, TWIN))
    other = _ok(TWIN.sse.replace(b'"length"', b'"stop"'))
    b.add(other, classify(other, TWIN))
    a.extra["engine_exits"] = "0,0"
    assert a.line() == "a requests 3 failed 1 truncated 1 migrated 0 p99_ttft_s 0.100 twin_mismatch 0 " \
                       "engine_exits 0,0"
    assert total([a, b]).line() == "TOTAL requests 4 failed 1 truncated 1 migrated 2 p99_ttft_s 0.100 " \
                                   "twin_mismatch 1"


def test_p99_is_nearest_rank():
    assert p99([float(i) for i in range(1, 101)]) == 99.0 and p99([3.0]) == 3.0 and math.isnan(p99([]))

