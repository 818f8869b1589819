"""A request's `/tokenize` body and the answer's token ids (router.shell.tokenize), checked against
vLLM 0.33's own request models; and the cold-join readiness gate (router.shell.app.ColdJoin)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import orjson
import pytest

from contracts import PATH_CHAT, PATH_COMPLETIONS, PATH_EMBEDDINGS
from router.routing.base import EngineState
from router.shell.app import ColdJoin, scored_by
from router.shell.tokenize import given_ids, token_ids_of, tokenize_body, tokenizing_engine
from stack_components.engine_check import engine_python

PROBE = Path(__file__).with_name("vllm_tokenize_probe.py")
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True,
        "add_generation_prompt": False, "continue_final_message": True, "tools": [TOOL],
        "chat_template_kwargs": {"enable_thinking": False}, "temperature": 0.2}


def test_a_chat_body_carries_every_field_that_changes_the_rendering() -> None:
    """The chat's messages and template options go to `/tokenize`; sampling fields do not."""
    body = orjson.loads(tokenize_body(CHAT, PATH_CHAT, "m") or b"")
    assert body == {"model": "m", "messages": CHAT["messages"], "add_generation_prompt": False,
                    "continue_final_message": True, "tools": [TOOL],
                    "chat_template_kwargs": {"enable_thinking": False}}


def test_only_one_string_prompt_or_a_chat_is_tokenised() -> None:
    """A batch of prompts, token ids and embeddings have no `/tokenize` body; ids given are the ids."""
    assert tokenize_body({"prompt": "abc", "add_special_tokens": False}, PATH_COMPLETIONS, "m") == \
        orjson.dumps({"model": "m", "prompt": "abc", "add_special_tokens": False})
    assert tokenize_body({"prompt": ["a", "b"]}, PATH_COMPLETIONS, "m") is None
    assert tokenize_body({"input": "abc"}, PATH_EMBEDDINGS, "m") is None
    assert given_ids({"prompt": [5, 6, 7]}, PATH_COMPLETIONS) == (5, 6, 7)
    assert given_ids({"prompt": [[5, 6]]}, PATH_COMPLETIONS) is None
    assert given_ids({"prompt": [5, True]}, PATH_COMPLETIONS) is None
    assert given_ids({"prompt": [5, 6]}, PATH_CHAT) is None


def test_only_a_list_of_integers_is_taken_as_token_ids() -> None:
    """Any other answer (not JSON, no `tokens`, a non-integer) gives no ids."""
    assert token_ids_of(b'{"count": 2, "max_model_len": 9, "tokens": [1, 2], "token_strs": null}') == (1, 2)
    for raw in (b"", b"not json", b"[1, 2]", b'{"tokens": "12"}', b'{"tokens": [1, 2.5]}',
                b'{"tokens": [true]}', b'{"error": {"message": "x"}}'):
        assert token_ids_of(raw) is None, raw


def test_the_least_busy_candidate_tokenises() -> None:
    """Ties go to the first candidate; no candidate, no engine."""
    a, b, c = (EngineState(id=x, gpu_cache_tokens=1000) for x in "abc")
    a.in_flight, b.waiting = 2, 1
    assert tokenizing_engine([a, b, c]) is c
    c.in_flight = 1
    assert tokenizing_engine([a, b, c]) is b
    assert tokenizing_engine([]) is None


def test_vllm_parses_the_bodies_as_the_request_they_render() -> None:
    """vLLM 0.33's `TokenizeRequest` union takes the chat body as a `TokenizeChatRequest` with its
    template options as sent, the completion body as a `TokenizeCompletionRequest`; its
    `TokenizeResponse` answer reads back as the ids."""
    python = engine_python()
    if python is None:
        pytest.fail("no .venv-engine: run `make install` (vLLM's request models cannot be skipped)")
    completion = {"model": "m", "prompt": "hello", "max_tokens": 1}
    plain_chat = {"model": "m", "messages": CHAT["messages"]}
    bodies = [orjson.loads(tokenize_body(CHAT, PATH_CHAT, "m") or b""),
              orjson.loads(tokenize_body(plain_chat, PATH_CHAT, "m") or b""),
              orjson.loads(tokenize_body(completion, PATH_COMPLETIONS, "m") or b"")]
    env = {"VLLM_TARGET_DEVICE": "cpu", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(python), str(PROBE)], input=json.dumps(bodies), capture_output=True,
                          text=True, timeout=300, check=False, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    (kind, chat), (kind_default, default), (kind_completion, plain) = found["requests"]
    assert kind == kind_default == "TokenizeChatRequest" and kind_completion == "TokenizeCompletionRequest"
    assert chat == {"model": "m", "add_special_tokens": False, "add_generation_prompt": False,
                    "continue_final_message": True, "chat_template": None,
                    "chat_template_kwargs": {"enable_thinking": False}, "messages": 1, "tools": 1}
    assert default["add_generation_prompt"] is True and default["continue_final_message"] is False
    assert plain == {"model": "m", "prompt": "hello", "add_special_tokens": True}
    assert token_ids_of(json.dumps(found["answer"]).encode()) == (7, 8, 9)


def test_cold_join_waits_for_every_feed_to_leave_syncing_then_stays_open() -> None:
    """Warming while a feed syncs; open for good once none does (a feed syncing later, on a new
    engine, keeps the router ready)."""
    gate = ColdJoin(10.0)
    gate.start(100.0)
    assert gate.warming(["live", "syncing"], 101.0)
    assert not gate.warming(["live", "untrusted"], 102.0)
    assert not gate.warming(["live", "syncing"], 103.0)


def test_cold_join_is_bounded_and_ready_with_no_engine() -> None:
    """No engine yet: ready (scale from zero), the gate still armed for an engine found a moment
    later; past `bound_s`, ready whatever the feeds; bound 0: never warming."""
    gate = ColdJoin(10.0)
    gate.start(0.0)
    assert not gate.warming([], 1.0)
    assert gate.warming(["syncing"], 2.0)
    assert not gate.warming(["syncing"], 10.0)
    assert not gate.warming(["syncing"], 11.0)
    never = ColdJoin(0.0)
    never.start(0.0)
    assert not never.warming(["syncing"], 0.0)
    unstarted = ColdJoin(5.0)
    assert not unstarted.warming(["syncing"], 0.0)
    unstarted.start(1.0)
    assert unstarted.warming(["syncing"], 2.0)


def test_health_names_each_engine_scored_by_events_or_why_not() -> None:
    """Live engines are scored by `events`; any other state is the fallback's reason."""
    assert scored_by({"a": "live", "b": "stale", "c": "untrusted", "d": "syncing"}) == \
        {"a": "events", "b": "stale", "c": "untrusted", "d": "syncing"}
