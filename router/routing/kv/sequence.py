"""Sequence-number bookkeeping for one engine's KV-event stream (pure).

vLLM numbers each publisher's batches 0, 1, 2, ... (`contracts.kv_events`); a subscriber that
sees seq jump has lost batches (PUB drops past its high-water mark, or the subscriber joined
late) and must replay them or stop trusting what it knows of that engine. A seq of 0 after
later ones is a new publisher: the engine restarted, its cache is empty. A seq below the next
expected one (and not 0) is a duplicate or a late, reordered batch: already accounted for.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SeqVerdict(enum.Enum):
    """What one batch's seq says about the stream."""

    NEXT = "next"
    """The expected batch (or the first one ever seen, when it is seq 0): apply it."""
    GAP = "gap"
    """Batches `missing` were lost before this one (or precede the first one seen)."""
    STALE = "stale"
    """Already seen or skipped past: ignore it."""
    RESTART = "restart"
    """Seq 0 again: a new publisher (engine restart); forget the engine's state, then apply."""


@dataclass(frozen=True, slots=True)
class SeqCheck:
    """The verdict and, for a gap, the missing seqs `first..last` inclusive."""

    verdict: SeqVerdict
    missing: tuple[int, int] | None = None


class SequenceTracker:
    """Tracks the next expected seq of one stream; `observe` each batch's seq in arrival order."""

    __slots__ = ("expected",)

    def __init__(self) -> None:
        self.expected: int | None = None
        """The seq the next batch should carry (None: nothing seen yet)."""

    def observe(self, seq: int) -> SeqCheck:
        """Judge `seq` and move past it (a stale seq moves nothing)."""
        if seq < 0:
            raise ValueError(f"seq must be >= 0 (got {seq})")
        expected = self.expected
        if expected is not None and seq < expected:
            if seq == 0:
                self.expected = 1
                return SeqCheck(SeqVerdict.RESTART)
            return SeqCheck(SeqVerdict.STALE)
        self.expected = seq + 1
        start = 0 if expected is None else expected
        if seq == start:
            return SeqCheck(SeqVerdict.NEXT)
        return SeqCheck(SeqVerdict.GAP, (start, seq - 1))
