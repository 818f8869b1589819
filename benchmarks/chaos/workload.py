"""The chaos load's requests and the answer each must get (its uninterrupted twin). Pure.

Every user holds a conversation: round `r` resends the last `history_rounds` rounds (question
and answer) and a new question, at temperature 0, with a fixed `max_tokens` and a unique
`x-request-id`. The history carries the *twin's* answer, not what came back, so the request
sequence is the same whatever the faults did.

The twin is computed, not replayed: the emulator generates from (context, position) alone
(`emulator.generation`), its chunk ids derive from `x-request-id` (`emulator.wire.request_id`),
`created` is pinned (`plan.CREATED`), and it sends one chunk per token whatever the batch
timing (`emulator.wire.StreamEncoder`), so the uninterrupted stream's bytes are known exactly:
the twin is built with the emulator's own request parser and encoder. That spares a second
request per stream on a 2-core machine (which would also load the engines a scenario
measures). The harness checks the computation itself at the end of each run by replaying some
requests to an undisturbed engine directly (`TWIN_CHECK`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bench.workload import filler
from emulator.config import EngineConfig
from emulator.generation import Continuation
from emulator.wire import StreamEncoder, parse_generation, request_id
from router.routing.prompt import count_tokens

FINISH_LENGTH = "length"


@dataclass(frozen=True, kw_only=True)
class Twin:
    """What an uninterrupted stream of one request carries."""

    id: str
    model: str
    created: int
    text: str
    tokens: int
    finish_reason: str
    sse: bytes
    """The whole uninterrupted response body, byte for byte."""


@dataclass(frozen=True, kw_only=True)
class Request:
    """One request of the load: its id (the `x-request-id`), body and twin."""

    rid: str
    body: dict[str, Any]
    twin: Twin


def twin_of(body: Mapping[str, Any], rid: str, created: int) -> Twin:
    """The uninterrupted answer to a streamed chat request sent with `x-request-id: rid`, as an
    emulated engine serving `body["model"]` (never stopping early) sends it."""
    parsed = parse_generation(orjson.dumps(body), "chat", EngineConfig(model=str(body["model"])))
    words = Continuation(parsed.prompt).take(parsed.max_tokens)
    encoder = StreamEncoder("chat", request_id("chat", rid), created, parsed.model)
    usage = encoder.usage(parsed.prompt_tokens, len(words)) if parsed.include_usage else b""
    sse = encoder.role() + encoder.tokens(words, FINISH_LENGTH) + usage + encoder.done()
    text = "".join(words)
    return Twin(id=request_id("chat", rid), model=parsed.model, created=created, text=text,
                tokens=count_tokens(text), finish_reason=FINISH_LENGTH, sse=sse)


def question(user: int, round_: int, tokens: int) -> str:
    """Round `round_`'s question of `user` (seeded by both, so every run asks the same)."""
    return f"user {user} round {round_}: " + filler(random.Random(user * 100_003 + round_), tokens)


class Conversation:
    """One user's rounds; `next_request` builds the next one from the twins so far."""

    def __init__(self, user: int, *, model: str, prompt_tokens: int, history_rounds: int, max_tokens: int,
                 created: int, tag: str = "chaos") -> None:
        self.user = user
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.history_rounds = history_rounds
        self.max_tokens = max_tokens
        self.created = created
        self.tag = tag
        self.round = 0
        self._turns: list[tuple[str, str]] = []

    def next_request(self) -> Request:
        """The next round's request (its twin's answer joins the history)."""
        asked = question(self.user, self.round, self.prompt_tokens)
        messages: list[dict[str, str]] = []
        for q, a in self._turns[-self.history_rounds:] if self.history_rounds else []:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": asked})
        body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens, "temperature": 0,
                "stream": True, "stream_options": {"include_usage": True}}
        rid = f"{self.tag}-u{self.user}-r{self.round}"
        twin = twin_of(body, rid, self.created)
        self._turns.append((asked, twin.text))
        self.round += 1
        return Request(rid=rid, body=body, twin=twin)
