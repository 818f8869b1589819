"""Weighted rollouts of a LoRA adapter: clients send a stable name (`sql`), the router rewrites
it to one of the adapter's versions (`sql--v2`, each loaded on the engines as an adapter of its
own) by weight, the same version for every request of one conversation, on every router.

As the Gateway API Inference Extension's `InferenceModelRewrite` (`apix/v1alpha2/
inferencemodelrewrite_types.go`: rules matching the body's `model`, targets with weights), with
two differences: its split is weighted-random per request, this one is sticky per conversation
(a conversation that moved version mid-way would lose its KV cache, which vLLM keys by adapter,
and change behaviour between turns); and weights are percentages with 0 allowed (a version at 0
stays loaded and takes no new conversation: the first step of retiring it).

The pick is weighted rendezvous hashing: each version scores `-ln(u) / weight` with `u` uniform
from a hash of (stable name, version, conversation key); the lowest score wins. A version wins
with probability weight / 100, the answer depends on nothing but the weights and the key (no
order, no process state: replicas agree), and raising one version's weight while lowering
others only ever moves conversations onto it.

The conversation key is the session header when the client sends one, else the conversation's
opening: a chat's messages up to its first user message (a system prompt alone is shared by
every conversation), a completion's first `OPENING_BYTES` of prompt. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import xxhash

from router.routing.prompt import prompt_text, render_chat

OPENING_BYTES: Final = 1024
"""Of a prompt that is not a chat: the bytes that identify its conversation (16 blocks of 64)."""
_SCALE: Final = 2.0**-64


def conversation_key(session: str | None, body: Mapping[str, Any]) -> bytes:
    """What identifies a request's conversation: the session header's value, else its opening."""
    if session:
        return b"s\0" + session.encode("utf-8", "surrogatepass")
    messages = body.get("messages")
    if isinstance(messages, list):
        turns = [m for m in messages if isinstance(m, Mapping)]
        first_user = next((i for i, m in enumerate(turns) if m.get("role") == "user"), len(turns) - 1)
        return b"c\0" + render_chat(turns[:first_user + 1]).encode("utf-8", "surrogatepass")
    return b"p\0" + prompt_text(body).encode("utf-8", "surrogatepass")[:OPENING_BYTES]


def pick(name: str, weights: Mapping[str, int], key: bytes) -> str:
    """The version of rollout `name` that the conversation `key` goes to (weights: version ->
    percent, at least one above 0)."""
    best, best_score = "", math.inf
    for version, weight in weights.items():
        if weight <= 0:
            continue
        seed = xxhash.xxh3_64_intdigest(f"{name}\0{version}".encode())
        u = (xxhash.xxh3_64_intdigest(key, seed) + 0.5) * _SCALE
        score = -math.log(u) / weight
        if score < best_score:
            best, best_score = version, score
    if not best:
        raise ValueError(f"rollout {name!r} has no version with weight > 0: {dict(weights)}")
    return best


class Rewrites:
    """The router's rollout table: stable name -> {version's served name: weight}."""

    def __init__(self, rollouts: Mapping[str, Mapping[str, int]]) -> None:
        self._rollouts = {name: dict(weights) for name, weights in rollouts.items()}
        self._stable = {version: name for name, weights in self._rollouts.items() for version in weights}

    def __bool__(self) -> bool:
        return bool(self._rollouts)

    def names(self) -> list[str]:
        """The stable names, sorted."""
        return sorted(self._rollouts)

    def is_version(self, model: str) -> bool:
        """Whether `model` is one rollout's version (a served adapter clients are not shown)."""
        return model in self._stable

    def target(self, model: str, session: str | None, body: Mapping[str, Any]) -> str | None:
        """The version a request naming `model` goes to; None when `model` is no stable name."""
        weights = self._rollouts.get(model)
        if weights is None:
            return None
        return pick(model, weights, conversation_key(session, body))

    def versions(self, name: str) -> dict[str, int]:
        """The versions of stable name `name` with their weights (empty when not a stable name)."""
        return dict(self._rollouts.get(name, {}))
