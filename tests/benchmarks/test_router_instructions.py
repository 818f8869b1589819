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


_OBJECTS = b"""# callgrind format
version: 1
positions: line
events: Ir
ob=(1) /usr/bin/python3.11
fl=(1) ceval.c
fn=(1) _PyEval_EvalFrameDefault
16 100
+2 20
cob=(2) /venv/lib/python3.11/site-packages/granian/_granian.cpython-311-x86_64-linux-gnu.so
cfn=(2) hyper_parse
calls=3 0
16 999
ob=(2) /venv/lib/python3.11/site-packages/granian/_granian.cpython-311-x86_64-linux-gnu.so
fl=(2) ???
fn=(2) hyper_parse
0 300
* 7
ob=(1)
fn=(1)
-1 5
totals: 432
"""


def test_instructions_are_attributed_to_their_object_without_call_costs() -> None:
    """Self cost per object: `calls=` lines' inclusive costs are not counted again, and a
    compressed `ob=(n)` reuses the name it was given; the objects add up to the totals."""
    from benchmarks.router_instructions import object_instructions

    assert object_instructions(_OBJECTS, b"_granian") == 307
    assert object_instructions(_OBJECTS, b"/usr/bin/python3.11") == 125
    assert object_instructions(_OBJECTS, b"") == instructions_in(_OBJECTS) == 432


def test_granian_adds_a_target() -> None:
    from benchmarks.router_instructions import _targets

    labels = [(t.label, t.granian) for t in _targets(_parse(["--granian"]))]
    assert labels == [("ours", False), ("ours granian", True)]
