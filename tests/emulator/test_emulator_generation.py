"""The emulated model: output is a function of (context, position), like a model at temperature 0."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from emulator.generation import GENERATION_PROMPT, WORDS, Continuation, answer_text, generation_context
from router.routing.prompt import count_tokens, render_chat


@given(st.text(max_size=300), st.integers(0, 60), st.integers(1, 40))
def test_continuing_a_prefix_of_the_answer_gives_the_rest_of_it(context, cut, more):
    """Context + the first k tokens generates exactly tokens k, k+1, ... of the original answer."""
    whole = Continuation(context).take(cut + more)
    resumed = Continuation(context + "".join(whole[:cut])).take(more)
    assert resumed == whole[cut:]


def test_different_contexts_give_different_answers_and_salts_change_them():
    """The answer depends on the context and on the sampling salt."""
    a, b = answer_text("alpha " * 20, 32), answer_text("beta " * 20, 32)
    assert a != b and answer_text("alpha " * 20, 32) == a
    assert answer_text("alpha " * 20, 32, salt=7) != a


def test_every_token_is_a_four_byte_word():
    """Each generated token is one of the 4-byte words (so counts re-count exactly)."""
    words = Continuation("x").take(200)
    assert set(words) <= set(WORDS) and count_tokens("".join(words)) == 200


def test_chat_context_adds_the_generation_prompt_or_continues_the_final_message():
    """By default the assistant's turn is opened; `continue_final_message` leaves the last message
    open, so a partial answer sent back as an assistant message continues the same text."""
    messages = [{"role": "user", "content": "hi"}]
    opened = generation_context({"messages": messages})
    assert opened == render_chat(messages) + GENERATION_PROMPT
    partial = " the and"
    resumed = generation_context({"messages": [*messages, {"role": "assistant", "content": partial}],
                                  "continue_final_message": True, "add_generation_prompt": False})
    assert resumed == opened + partial
    assert generation_context({"messages": messages, "add_generation_prompt": False}) == render_chat(messages)


def test_completion_context_is_the_prompt():
    """A completion continues its prompt as given."""
    assert generation_context({"prompt": "once upon"}) == "once upon"
