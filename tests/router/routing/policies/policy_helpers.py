"""Builders shared by the policy tests: engines, requests, conversations."""

from __future__ import annotations

from router.routing.base import EngineState, RouteRequest

SYSTEM = (b"<|system|>\nYou are a careful assistant; answer in full sentences. " * 80)[:4000]


def engines(count: int, *, gpu: int = 400_000, cpu: int = 0) -> list[EngineState]:
    """`count` idle engines with the given cache capacity."""
    return [EngineState(id=f"http://10.0.0.{i}:8000", gpu_cache_tokens=gpu, cpu_cache_tokens=cpu)
            for i in range(count)]


def request(prompt: bytes, key: str | None = None) -> RouteRequest:
    return RouteRequest(model="m", prompt=prompt, session_key=key)


def user_text(user: int, size: int) -> bytes:
    """`size` bytes of text only `user` has."""
    unit = f"<|user|>\nuser {user} asks about topic {user * 7919 % 104729}. ".encode()
    return (unit * (size // len(unit) + 1))[:size]


def conversation(user: int, rounds: int, *, first: int = 12_000, turn: int = 600,
                 system: bytes = SYSTEM) -> list[bytes]:
    """The prompts of `rounds` rounds: each round repeats the last and adds an answer and a question."""
    prompt = system + user_text(user, first)
    prompts = [prompt]
    for r in range(1, rounds):
        prompt = prompt + f"<|assistant|>\nanswer {r} for {user}\n".encode() + user_text(user * 100 + r, turn)
        prompts.append(prompt)
    return prompts
