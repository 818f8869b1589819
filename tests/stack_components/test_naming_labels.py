"""Object names and label values derived from keys."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from contracts import LABEL_MODEL, LABEL_PART_OF, LABEL_ROLE, PART_OF, ROLE_ENGINE
from stack_components.labels import object_labels, selector_labels
from stack_components.naming import label_value, object_name

DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_object_name_joins_and_lowercases() -> None:
    """Parts join with '-' and become a DNS label."""
    assert object_name("LLM", "llama_8b", "engine") == "llm-llama-8b-engine"


def test_long_names_are_cut_but_stay_distinct() -> None:
    """Two long names differing only at the end stay distinct after shortening."""
    a, b = object_name("x" * 80 + "a"), object_name("x" * 80 + "b")
    assert len(a) <= 63 and len(b) <= 63 and a != b


def test_model_label_value_from_hugging_face_id() -> None:
    """Slashes become dots so an HF id is a valid label value."""
    assert label_value("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama.Llama-3.1-8B-Instruct"


def test_selector_labels_use_the_contract_names() -> None:
    """Engines are labelled part-of llm-stack, role engine, and the sanitised model."""
    labels = selector_labels(ROLE_ENGINE, "llm-a", "org/model")
    assert labels[LABEL_PART_OF] == PART_OF and labels[LABEL_ROLE] == ROLE_ENGINE
    assert labels[LABEL_MODEL] == "org.model"
    assert labels.items() <= object_labels(ROLE_ENGINE, "llm-a", "org/model", {"team": "x"}).items()


@given(st.text(min_size=1, max_size=200))
def test_any_text_gives_valid_names(text: str) -> None:
    """Any string yields a valid DNS label and a valid label value."""
    assert DNS.match(object_name(text)) and len(object_name(text)) <= 63
    assert LABEL.match(label_value(text)) and len(label_value(text)) <= 63
