"""The chaos load's requests and the answer each must get (its uninterrupted twin). Pure.

Every user holds a conversation: round `r` resends the last `history_rounds` rounds (question
and answer) and a new question, at temperature 0, with a fixed `max_tokens` and a unique
`x-request-id`. The history carries the *twin's* answer, not what came back, so the request
sequence is the same whatever the faults did.

The twin is computed, not replayed: the emulator generates from (context, position) alone
(`emulator.generation`), its chunk ids derive from `x-request-id` (`emulator.wire.request_id`)
and `created` is pinned (`plan.CREATED`), so the uninterrupted answer is known exactly without
sending a second request per stream on a 2-core machine (which would also load the engines the
scenario measures). What a twin does not fix is chunking (how many tokens a chunk carries
depends on batch timing, even on an undisturbed engine), so a stream is compared to its twin
event by event in content, not in raw bytes (`tally`). The harness checks the computation
itself at the end of each run by replaying some requests to an undisturbed engine directly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.workload import filler
from emulator.generation import answer_text, generation_context
from emulator.wire import request_id
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


@dataclass(frozen=True, kw_only=True)
class Request:
    """One request of the load: its id (the `x-request-id`), body and twin."""

    rid: str
    body: dict[str, Any]
    twin: Twin


def twin_of(body: Mapping[str, Any], rid: str, created: int) -> Twin:
    """The uninterrupted answer to a chat request sent with `x-request-id: rid`."""
    tokens = int(body["max_tokens"])
    text = answer_text(generation_context(body), tokens)
    return Twin(id=request_id("chat", rid), model=str(body["model"]), created=created, text=text,
                tokens=count_tokens(text), finish_reason=FINISH_LENGTH)


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
