"""What an emulated engine generates: an autoregressive stand-in for the model. Pure.

Each output token is one of `WORDS` (4 bytes each, so an answer counts as many tokens under
`router.routing.prompt.count_tokens` as were generated), chosen by hashing the last
`CONTEXT_BYTES` bytes of the text so far: the context the request continues, then every
token already generated. So the output is a function of (context, position) alone, as a
real model's is at temperature 0: a request whose context is another request's context plus
its first k tokens generates exactly that request's tokens k, k+1, ... — which is what lets
a test prove a stream migrated mid-generation to another engine byte-identical to an
uninterrupted one (the router appends the tokens already streamed to the prompt).

The context is what vLLM's chat template would hand the model (`generation_context`): the
rendered messages (`router.routing.prompt.render_chat`, the router's and the emulator's shared
stand-in for a chat template) plus the assistant's generation prompt (`add_generation_prompt`,
vLLM's default), or, with `continue_final_message`, the messages with the final (assistant)
message left open, as vLLM's `ChatCompletionRequest` documents both fields
(vllm/entrypoints/openai/chat_completion/protocol.py at 0.33.0).

Sampling: greedy (`salt` 0) at temperature 0 and when the request sets no temperature (the
emulator's default; vLLM's is the model's generation config); a temperature > 0 mixes a salt
into the hash: the request's `seed` when given, else a random one per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import xxhash

from router.routing.prompt import prompt_text, render_chat

WORDS: Final = (" the", " and", " one", " for", " you", " can", " all", " new", " big", " day")
CONTEXT_BYTES: Final = 64
"""The next token depends on this many trailing bytes of the text so far (16 tokens)."""
GENERATION_PROMPT: Final = "<|assistant|>\n"
"""What `add_generation_prompt` appends: the start of an assistant message in `render_chat`."""
_hash = xxhash.xxh3_64_intdigest


def generation_context(body: Mapping[str, Any]) -> str:
    """The text the model continues for a chat or completion request body."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return prompt_text(body)
    rendered = render_chat([m for m in messages if isinstance(m, Mapping)])
    if body.get("continue_final_message"):
        return rendered[:-1]  # the final message stays open: no closing newline
    if body.get("add_generation_prompt", True) is False:
        return rendered
    return rendered + GENERATION_PROMPT


class Continuation:
    """The tokens that continue one context, produced in order on demand."""

    __slots__ = ("_tail", "_salt", "words")

    def __init__(self, context: str, salt: int = 0) -> None:
        self._tail = context.encode()[-CONTEXT_BYTES:]
        self._salt = salt
        self.words: list[str] = []

    def take(self, count: int) -> list[str]:
        """The next `count` tokens (also appended to `words`)."""
        out = []
        tail, salt = self._tail, self._salt
        for _ in range(count):
            word = WORDS[_hash(tail, salt) % len(WORDS)]
            tail = (tail + word.encode())[-CONTEXT_BYTES:]
            out.append(word)
        self._tail = tail
        self.words.extend(out)
        return out

    def upto(self, count: int) -> list[str]:
        """The first `count` tokens of the answer (generating what is missing)."""
        if count > len(self.words):
            self.take(count - len(self.words))
        return self.words[:count]


def answer_text(context: str, tokens: int, salt: int = 0) -> str:
    """The first `tokens` tokens generated after `context`, as one string."""
    return "".join(Continuation(context, salt).take(tokens))
