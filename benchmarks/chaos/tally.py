"""How one stream is judged, and how a scenario's streams add up. Pure.

Every request ends in exactly one of:

- **failed**: no 200 (an HTTP error status, or no response head at all: connection refused or
  reset, or the client's patience ran out first), or a 200 stream that carries an SSE error
  event (`data: {"error": ...}`);
- **truncated**: a 200 stream without an error event that lacks its finish_reason chunk or its
  `data: [DONE]` (it ended, was reset or went silent past the client's patience first), or
  that carries fewer tokens than its twin (e.g. vLLM's `finish_reason: "abort"` on SIGTERM);
- **ok**: otherwise.

Independently, a stream **mismatches** its twin when what it carried differs from the
uninterrupted answer: a complete stream (finish chunk, all its tokens, `[DONE]`) unless its
body is the twin's byte for byte (`Twin.sse`: every chunk, the usage chunk and `[DONE]`); a
cut stream when a chunk's id, object, model or created differs, its content is not a prefix
of the twin's text, it carries more than one finish chunk, a role chunk anywhere but first,
data after `[DONE]`, or a usage chunk whose count disagrees with the tokens that came.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from benchmarks.chaos.workload import Twin
from router.routing.prompt import count_tokens

OK, FAILED, TRUNCATED = "ok", "failed", "truncated"
_DATA = b"data:"
_DONE = b"[DONE]"


@dataclass(frozen=True, kw_only=True)
class Observed:
    """What the client saw of one request; times in seconds from its launch."""

    status: int | None
    """HTTP status of the response head; None when none came."""
    error: str = ""
    """The client-side error that ended the request (reset, timeout), '' when it ended cleanly."""
    body: bytes = b""
    """The response body as received (an SSE stream for a 200)."""
    ttft_s: float | None = None
    """Time to the first content token; None when none came."""


@dataclass(frozen=True, kw_only=True)
class Verdict:
    outcome: str
    mismatch: bool
    tokens: int
    reason: str = ""


@dataclass
class _Stream:
    """An SSE body taken apart."""

    done: bool = False
    text: str = ""
    finishes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    heads: set[tuple[Any, Any, Any, Any]] = field(default_factory=set)
    roles: list[int] = field(default_factory=list)
    """Indexes (among the chunks) of the chunks whose delta carries a role."""
    chunks: int = 0
    usage: Mapping[str, Any] | None = None
    malformed: str = ""
    after_done: bool = False


def data_lines(body: bytes) -> list[bytes]:
    """The payloads of the body's `data:` lines, in order (a last line cut mid-way is kept)."""
    return [line[len(_DATA):].strip() for line in body.splitlines() if line.startswith(_DATA)]


def _absorb(out: _Stream, chunk: Mapping[str, Any]) -> None:
    if "error" in chunk:
        err = chunk["error"]
        out.errors.append(str(err.get("message") if isinstance(err, Mapping) else err))
        return
    out.heads.add((chunk.get("id"), chunk.get("object"), chunk.get("model"), chunk.get("created")))
    if chunk.get("usage"):
        out.usage = chunk["usage"]
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if "role" in delta:
            out.roles.append(out.chunks)
        out.text += delta.get("content") or ""
        if choice.get("finish_reason") is not None:
            out.finishes.append(str(choice["finish_reason"]))


def parse_stream(body: bytes) -> _Stream:
    """The SSE body's events: content, finish reasons, error events, [DONE]."""
    out = _Stream()
    for payload in data_lines(body):
        if out.done:
            out.after_done = True
            break
        if payload == _DONE:
            out.done = True
            continue
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            out.malformed = payload[:80].decode(errors="replace")
            break
        if not isinstance(chunk, dict):
            out.malformed = payload[:80].decode(errors="replace")
            break
        _absorb(out, chunk)
        out.chunks += 1
    return out


_CHUNK_OBJECT = "chat.completion.chunk"


def _mismatch(s: _Stream, body: bytes, twin: Twin, complete: bool) -> str:
    """Why what the stream carried differs from its twin ('' when it does not)."""
    if complete:
        same = body == twin.sse
        return "" if same else f"body differs from the twin's from byte {_common(body, twin.sse)} " \
                               f"({len(body)} vs {len(twin.sse)} bytes)"
    if s.heads - {(twin.id, _CHUNK_OBJECT, twin.model, twin.created)}:
        return f"chunk id/object/model/created {sorted(map(str, s.heads))}"
    if not twin.text.startswith(s.text):
        return f"content differs from the twin's from byte {_common(s.text.encode(), twin.text.encode())}"
    if len(s.finishes) > 1 or s.roles not in ([], [0]) or s.after_done:
        return f"{len(s.finishes)} finish chunks, role chunks at {s.roles}, data after [DONE]: {s.after_done}"
    if s.usage is not None and s.usage.get("completion_tokens") != count_tokens(s.text):
        return f"usage {dict(s.usage)} != {count_tokens(s.text)} tokens received"
    return ""


def _common(a: bytes, b: bytes) -> int:
    """Length of the common prefix."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def classify(seen: Observed, twin: Twin) -> Verdict:
    """The verdict on one request (module docstring)."""
    if seen.status != 200:
        why = f"HTTP {seen.status}" if seen.status is not None else f"no response ({seen.error or 'none'})"
        return Verdict(outcome=FAILED, mismatch=False, tokens=0, reason=why)
    s = parse_stream(seen.body)
    tokens = count_tokens(s.text)
    complete = s.done and bool(s.finishes) and not seen.error
    why_mismatch = _mismatch(s, seen.body, twin, complete and tokens >= twin.tokens)
    mismatch = bool(why_mismatch)
    if s.errors or s.malformed:
        why = f"SSE error event: {s.errors[0]}" if s.errors else f"malformed SSE data: {s.malformed}"
        return Verdict(outcome=FAILED, mismatch=mismatch, tokens=tokens, reason=why)
    if not complete or tokens < twin.tokens:
        lacks = [what for what, ok in (("finish_reason", bool(s.finishes)), ("[DONE]", s.done)) if not ok]
        why = (f"lacks {' and '.join(lacks)}" if lacks else f"{tokens} of {twin.tokens} tokens") \
            + (f" ({seen.error})" if seen.error else "")
        return Verdict(outcome=TRUNCATED, mismatch=mismatch, tokens=tokens, reason=why)
    return Verdict(outcome=OK, mismatch=mismatch, tokens=tokens, reason=why_mismatch)


def p99(values: Sequence[float]) -> float:
    """Nearest-rank 99th percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass
class Tally:
    """One scenario's figures."""

    name: str
    requests: int = 0
    failed: int = 0
    truncated: int = 0
    migrated: int = 0
    mismatched: int = 0
    ttfts: list[float] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    """Further `key value` fields printed after the required ones (in insertion order)."""

    def add(self, seen: Observed, verdict: Verdict) -> None:
        self.requests += 1
        self.failed += verdict.outcome == FAILED
        self.truncated += verdict.outcome == TRUNCATED
        self.mismatched += verdict.mismatch
        if seen.ttft_s is not None:
            self.ttfts.append(seen.ttft_s)

    def line(self) -> str:
        """`NAME requests N failed F truncated T migrated M p99_ttft_s X twin_mismatch K [...]`."""
        fields = [self.name, "requests", str(self.requests), "failed", str(self.failed), "truncated",
                  str(self.truncated), "migrated", str(self.migrated), "p99_ttft_s", f"{p99(self.ttfts):.3f}",
                  "twin_mismatch", str(self.mismatched)]
        for key, value in self.extra.items():
            fields += [key, value]
        return " ".join(fields)


def total(tallies: Iterable[Tally]) -> Tally:
    """The TOTAL line's figures: every scenario's requests together."""
    out = Tally("TOTAL")
    for t in tallies:
        out.requests += t.requests
        out.failed += t.failed
        out.truncated += t.truncated
        out.migrated += t.migrated
        out.mismatched += t.mismatched
        out.ttfts += t.ttfts
    return out
