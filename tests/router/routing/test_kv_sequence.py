"""A KV-event stream's sequence numbers: the next batch is applied, a jump is a gap naming the
missing seqs, an old seq is stale, seq 0 again is a restart."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.routing.kv.sequence import SeqCheck, SequenceTracker, SeqVerdict

NEXT, GAP, STALE, RESTART = SeqVerdict.NEXT, SeqVerdict.GAP, SeqVerdict.STALE, SeqVerdict.RESTART


def _run(seqs: list[int]) -> list[SeqCheck]:
    tracker = SequenceTracker()
    return [tracker.observe(seq) for seq in seqs]


@pytest.mark.parametrize(("seqs", "checks"), [
    ([0, 1, 2], [SeqCheck(NEXT)] * 3),
    ([0, 1, 4, 5], [SeqCheck(NEXT), SeqCheck(NEXT), SeqCheck(GAP, (2, 3)), SeqCheck(NEXT)]),
    ([7, 8], [SeqCheck(GAP, (0, 6)), SeqCheck(NEXT)]),  # joined late: 0..6 happened before
    ([0, 1, 2, 1, 3], [SeqCheck(NEXT)] * 3 + [SeqCheck(STALE), SeqCheck(NEXT)]),
    ([0, 2, 1, 3], [SeqCheck(NEXT), SeqCheck(GAP, (1, 1)), SeqCheck(STALE), SeqCheck(NEXT)]),  # reordered
    ([0, 1, 2, 0, 1], [SeqCheck(NEXT)] * 3 + [SeqCheck(RESTART), SeqCheck(NEXT)]),
    ([5, 0, 1], [SeqCheck(GAP, (0, 4)), SeqCheck(RESTART), SeqCheck(NEXT)]),
    ([0, 0], [SeqCheck(NEXT), SeqCheck(RESTART)]),
])
def test_verdicts(seqs, checks) -> None:
    """Each arrival order gets the verdicts the module docstring promises."""
    assert _run(seqs) == checks


def test_a_negative_seq_is_refused() -> None:
    """Seqs are unsigned on the wire; a negative one is a caller's bug, named."""
    with pytest.raises(ValueError, match="-1"):
        SequenceTracker().observe(-1)


@given(st.lists(st.integers(1, 200), min_size=1, max_size=60))
def test_gaps_and_applied_batches_account_for_every_seq(seqs) -> None:
    """Without restarts, the applied seqs and the gaps' ranges together cover 0..max exactly once:
    nothing lost goes unreported, nothing is reported or applied twice."""
    seen: list[int] = []
    for seq, check in zip(seqs, _run(seqs), strict=True):
        if check.verdict is GAP:
            assert check.missing is not None
            seen += range(check.missing[0], check.missing[1] + 1)
        if check.verdict in (NEXT, GAP):
            seen.append(seq)
        assert check.verdict is not RESTART
    assert sorted(seen) == list(range(max(seqs) + 1))
