"""ShareGPT-format input: `[{"conversations": [{"from": "human", "value": ...}, ...]}, ...]`.

`parse_sharegpt` is pure (JSON value in, dialogs out); `read_sharegpt` is the thin file shell.
Human turns become the questions; the following assistant turn's length (approximate
tokens) caps that round's answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.errors import InputFileError
from bench.workload import Dialog
from router.routing.prompt import count_tokens

_HUMAN = frozenset({"human", "user"})
_ASSISTANT = frozenset({"gpt", "assistant", "chatgpt", "bard", "bing"})


def _dialog(turns: Sequence[Any]) -> Dialog | None:
    questions: list[str] = []
    answers: list[int] = []
    for turn in turns:
        if not isinstance(turn, Mapping) or not isinstance(turn.get("value"), str):
            continue
        speaker = str(turn.get("from", "")).lower()
        if speaker in _HUMAN and turn["value"].strip():
            questions.append(turn["value"])
            answers.append(0)
        elif speaker in _ASSISTANT and questions:
            answers[-1] = count_tokens(turn["value"])
    if not questions:
        return None
    return Dialog(questions=tuple(questions), answer_tokens=tuple(max(1, a) for a in answers))


def parse_sharegpt(data: Any, min_rounds: int) -> list[Dialog]:
    """The dialogs of a ShareGPT JSON value that hold at least `min_rounds` questions."""
    if not isinstance(data, list):
        raise InputFileError(f"--sharegpt: expected a JSON list of conversations (got {type(data).__name__})")
    dialogs = []
    for entry in data:
        turns = entry.get("conversations") if isinstance(entry, Mapping) else None
        dialog = _dialog(turns) if isinstance(turns, list) else None
        if dialog is not None and len(dialog.questions) >= min_rounds:
            dialogs.append(dialog)
    return dialogs


def read_sharegpt(path: str | Path, min_rounds: int) -> list[Dialog]:
    """Load and parse a ShareGPT file; fail when no conversation has `min_rounds` questions."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise InputFileError(f"--sharegpt: cannot read {str(path)!r} ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise InputFileError(f"--sharegpt: {str(path)!r} is not valid JSON ({exc})") from None
    dialogs = parse_sharegpt(data, min_rounds)
    if not dialogs:
        raise InputFileError(
            f"--sharegpt: no conversation in {str(path)!r} has at least {min_rounds} human turns "
            f"(--rounds {min_rounds})"
        )
    return dialogs
