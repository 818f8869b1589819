"""The instruction-count benchmark's pure parts: reading a callgrind dump, its arguments."""

from __future__ import annotations

import pytest

from benchmarks.router_instructions import _parse, instructions_in, per_request
from local.procs import BenchError

_DUMP = b"""# callgrind format
version: 1
creator: callgrind-3.19.0
desc: Trigger: dump
positions: line
events: Ir
summary: 0
fl=(1) ceval.c
fn=(1) _PyEval_EvalFrameDefault
16 120
totals: 194104089
"""


def test_a_requested_dump_is_read_from_its_totals_line() -> None:
    assert instructions_in(_DUMP) == 194_104_089
    assert per_request(194_104_089, 200) == pytest.approx(970_520.445)


def test_a_dump_without_totals_or_a_run_without_requests_is_an_error() -> None:
    with pytest.raises(BenchError, match="no totals line"):
        instructions_in(b"summary: 5\n")
    with pytest.raises(BenchError, match="no request completed"):
        per_request(10, 0)


def test_arguments_name_the_bad_value(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        _parse(["-n", "10", "-c", "20"])
    assert "-c must be in 1..n=10 (got 20)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["--source", str(tmp_path)])
    assert f"--source {tmp_path}: no router/ package there" in capsys.readouterr().err
