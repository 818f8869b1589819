"""The multi-round QA conversations, as chat messages. Pure and seeded: no I/O, no clock.

Every user shares one system prompt (the same `str` object, so 320 users hold it once) and
owns a private history; round `r` resends system + history + every earlier question/answer
turn + question `r`. Sizes follow `router.routing.prompt.count_tokens` (4 UTF-8 bytes per token):
filler text is made of 3-letter words plus a space, so N tokens are exactly 4N bytes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bench.errors import ConfigError

_CONSONANTS: Final = "bdfgklmnprstvz"
_VOWELS: Final = "aeiou"
# 980 words of 3 letters and a trailing space: one approximate token each.
WORDS: Final = tuple(f"{a}{v}{b} " for a in _CONSONANTS for v in _VOWELS for b in _CONSONANTS)

Message = dict[str, str]


def filler(rng: random.Random, tokens: int) -> str:
    """`tokens` approximate tokens of word-like text (exactly 4 bytes per token)."""
    return "".join(rng.choices(WORDS, k=tokens))


@dataclass(frozen=True, kw_only=True)
class Dialog:
    """Scripted questions for one user (from ShareGPT) and the answer length of each."""

    questions: tuple[str, ...]
    answer_tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.questions or len(self.questions) != len(self.answer_tokens):
            raise ConfigError(
                f"dialog: needs as many answer lengths as questions "
                f"(got {len(self.questions)} questions, {len(self.answer_tokens)} lengths)"
            )


@dataclass(frozen=True, kw_only=True)
class WorkloadSpec:
    """Sizes of the conversation parts, in approximate tokens, and the seed."""

    system_prompt_tokens: int = 1000
    history_tokens: int = 20000
    question_tokens: int = 32
    answer_tokens: int = 100
    rounds: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("system_prompt_tokens", "history_tokens"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be 0 or more (got {getattr(self, name)})")
        for name in ("question_tokens", "answer_tokens", "rounds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1 (got {getattr(self, name)})")


class Conversation:
    """One user's growing chat. `ask(r)` appends question r and returns the messages to
    send (a tuple of references to the stored dicts: the texts are never copied);
    `answer(text)` appends the assistant's reply."""

    def __init__(self, workload: Workload, user_id: str, system: Message, opening: str) -> None:
        self.user_id = user_id
        self._workload = workload
        self._messages: list[Message] = [system] if system["content"] else []
        self._opening = opening
        self._asked = 0

    @property
    def rounds_asked(self) -> int:
        """How many questions this conversation holds."""
        return self._asked

    def ask(self, round_index: int) -> tuple[Message, ...]:
        """Append question `round_index` (0-based) and return the whole conversation."""
        self._messages.append(self._question(round_index))
        self._asked += 1
        return tuple(self._messages)

    def peek(self, round_index: int) -> tuple[Message, ...]:
        """What `ask(round_index)` would send, without changing the conversation."""
        return (*self._messages, self._question(round_index))

    def previous_request(self) -> tuple[Message, ...] | None:
        """What the last round sent (every message but its answer), None before any round:
        what a steady-state engine would hold cached for this user."""
        if not self._asked:
            return None
        last = len(self._messages) - 1 if self._messages[-1]["role"] == "assistant" else len(self._messages)
        return tuple(self._messages[:last])

    def _question(self, round_index: int) -> Message:
        if round_index != self._asked:
            raise ConfigError(f"round: next round is {self._asked} (got {round_index})")
        question = self._workload.question(self.user_id, round_index)
        if round_index == 0:
            question = self._opening + question
        return {"role": "user", "content": question}

    def answer(self, text: str) -> None:
        """Append the assistant's reply to the last question."""
        self._messages.append({"role": "assistant", "content": text})

    def max_tokens(self, round_index: int) -> int:
        """The answer length asked for in round `round_index`."""
        return self._workload.answer_length(self.user_id, round_index)

    def fast_forward(self, rounds: int) -> None:
        """Fill `rounds` earlier rounds with scripted answers (a user who joined the run
        mid-conversation, as the original benchmark's ramp places them)."""
        for round_index in range(rounds):
            self.ask(round_index)
            self.answer(self._workload.synthetic_answer(self.user_id, round_index))


class Workload:
    """The shared part of every conversation (one system prompt) and a factory of users."""

    def __init__(self, spec: WorkloadSpec, dialogs: Sequence[Dialog] = ()) -> None:
        self.spec = spec
        self._dialogs = tuple(dialogs)
        for index, dialog in enumerate(self._dialogs):
            if len(dialog.questions) < spec.rounds:
                raise ConfigError(
                    f"dialogs[{index}]: needs at least {spec.rounds} questions "
                    f"(got {len(dialog.questions)})"
                )
        text = filler(random.Random(f"{spec.seed}:system"), spec.system_prompt_tokens)
        self._system: Message = {"role": "system", "content": text}

    @property
    def system_prompt(self) -> str:
        """The system prompt every user shares."""
        return self._system["content"]

    def conversation(self, user_id: str, start_round: int = 0) -> Conversation:
        """A new conversation for `user_id`, already holding `start_round` earlier rounds."""
        history = filler(random.Random(f"{self.spec.seed}:history:{user_id}"), self.spec.history_tokens)
        conv = Conversation(self, user_id, self._system, history)
        conv.fast_forward(start_round)
        return conv

    def question(self, user_id: str, round_index: int) -> str:
        """Question `round_index` of `user_id` (scripted, or `question_tokens` of filler)."""
        dialog = self._dialog(user_id)
        if dialog is not None:
            return dialog.questions[round_index]
        rng = random.Random(f"{self.spec.seed}:question:{user_id}:{round_index}")
        return filler(rng, self.spec.question_tokens)

    def answer_length(self, user_id: str, round_index: int) -> int:
        """max_tokens for that round: the scripted reply's length, capped at answer_tokens."""
        dialog = self._dialog(user_id)
        if dialog is None:
            return self.spec.answer_tokens
        return max(1, min(dialog.answer_tokens[round_index], self.spec.answer_tokens))

    def synthetic_answer(self, user_id: str, round_index: int) -> str:
        """A stand-in reply of the round's answer length (for rounds never really asked)."""
        rng = random.Random(f"{self.spec.seed}:answer:{user_id}:{round_index}")
        return filler(rng, self.answer_length(user_id, round_index))

    def _dialog(self, user_id: str) -> Dialog | None:
        if not self._dialogs:
            return None
        digest = random.Random(f"{self.spec.seed}:dialog:{user_id}").randrange(len(self._dialogs))
        return self._dialogs[digest]
