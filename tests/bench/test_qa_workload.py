"""Workload shape: token sizes, the shared prefix, growth per round, determinism, ShareGPT."""

from __future__ import annotations

import pytest

from bench.errors import ConfigError, InputFileError
from bench.sharegpt import parse_sharegpt, read_sharegpt
from bench.workload import Dialog, Workload, WorkloadSpec
from router.routing.prompt import count_tokens, render_chat

SPEC = WorkloadSpec(system_prompt_tokens=100, history_tokens=300, question_tokens=10, answer_tokens=7,
                    rounds=4, seed=3)


def test_parts_have_exactly_the_requested_token_counts():
    """System prompt, history+question and answers are exactly 4 bytes per requested token."""
    conv = Workload(SPEC).conversation("u1")
    system, first = conv.ask(0)
    assert count_tokens(system["content"]) == 100 and len(system["content"].encode()) == 400
    assert len(first["content"].encode()) == 4 * (300 + 10)
    assert conv.max_tokens(0) == 7


def test_system_prompt_is_shared_and_histories_differ():
    """Every user's conversation starts with the same system prompt object; histories differ."""
    workload = Workload(SPEC)
    a, b = (workload.conversation(u).ask(0) for u in ("alice", "bob"))
    assert a[0] is b[0]
    assert a[1]["content"] != b[1]["content"]


def test_conversation_grows_by_one_turn_pair_per_round():
    """Round r resends every earlier message unchanged, plus the answer and a new question."""
    conv = Workload(SPEC).conversation("u1")
    previous = conv.ask(0)
    for round_index in range(1, SPEC.rounds):
        conv.answer(f"answer {round_index}")
        current = conv.ask(round_index)
        assert current[: len(previous)] == previous
        assert [m["role"] for m in current[len(previous):]] == ["assistant", "user"]
        assert count_tokens(render_chat(current)) > count_tokens(render_chat(previous))
        previous = current
    assert conv.rounds_asked == SPEC.rounds


def test_same_seed_same_text_other_seed_other_text():
    """The workload is a function of the seed and the user id."""
    def first(seed):
        spec = WorkloadSpec(system_prompt_tokens=50, history_tokens=50, rounds=2, seed=seed)
        return Workload(spec).conversation("u7").ask(0)

    assert first(1) == first(1)
    assert first(1) != first(2)


def test_fast_forward_places_a_user_mid_conversation():
    """A user joining at round 2 already holds two scripted question/answer pairs."""
    conv = Workload(SPEC).conversation("late", start_round=2)
    messages = conv.ask(2)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert count_tokens(messages[2]["content"]) == SPEC.answer_tokens


def test_rounds_must_be_asked_in_order():
    """Asking a round out of order is refused with the expected round in the message."""
    conv = Workload(SPEC).conversation("u1")
    with pytest.raises(ConfigError, match="next round is 0"):
        conv.ask(1)


def test_sharegpt_questions_and_answer_caps():
    """Human turns become questions; the reply's length caps max_tokens at answer_tokens."""
    data = [
        {"conversations": [{"from": "human", "value": "hi?"}, {"from": "gpt", "value": "x" * 8},
                           {"from": "human", "value": "more?"}, {"from": "gpt", "value": "y" * 400}]},
        {"conversations": [{"from": "human", "value": "only one"}]},
        "not a conversation",
    ]
    dialogs = parse_sharegpt(data, min_rounds=2)
    assert dialogs == [Dialog(questions=("hi?", "more?"), answer_tokens=(2, 100))]
    workload = Workload(WorkloadSpec(history_tokens=5, system_prompt_tokens=5, rounds=2, answer_tokens=50),
                        dialogs)
    conv = workload.conversation("u1")
    assert conv.ask(0)[-1]["content"].endswith("hi?")
    assert (conv.max_tokens(0), conv.max_tokens(1)) == (2, 50)


def test_sharegpt_file_errors_name_the_flag(tmp_path):
    """A missing file, bad JSON or too-short conversations fail with `--sharegpt` in the text."""
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    short = tmp_path / "short.json"
    short.write_text('[{"conversations": [{"from": "human", "value": "q"}]}]')
    for path, needle in ((tmp_path / "missing.json", "cannot read"), (bad, "not valid JSON"),
                         (short, "at least 3 human turns")):
        with pytest.raises(InputFileError, match=needle) as info:
            read_sharegpt(path, min_rounds=3)
        assert str(info.value).startswith("--sharegpt")


def test_spec_rejects_nonsense_sizes():
    """Negative or zero sizes are refused with the field and value in the message."""
    with pytest.raises(ConfigError, match=r"history_tokens: must be 0 or more \(got -1\)"):
        WorkloadSpec(history_tokens=-1)
    with pytest.raises(ConfigError, match=r"answer_tokens: must be at least 1 \(got 0\)"):
        WorkloadSpec(answer_tokens=0)


def test_previous_request_is_the_last_round_without_its_answer():
    """A fresh user has no previous request; after two rounds it is round 1's prompt (no answer)."""
    workload = Workload(SPEC)
    assert workload.conversation("new").previous_request() is None
    conv = workload.conversation("late", start_round=2)
    previous = conv.previous_request()
    assert [m["role"] for m in previous] == ["system", "user", "assistant", "user"]
    assert conv.ask(2)[: len(previous)] == previous
