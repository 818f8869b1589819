"""Pacing users to an overall QPS, as production-stack's multi-round-qa.py does. Pure.

Each user sends its rounds `user_gap_s = users / qps` apart, and never before its previous
answer has finished (then it sends right away). A user occupies a slot of `rounds` gaps, and
a new user joins every `join_gap_s = rounds / qps`, so `users` slots overlap and the offered
load is exactly `qps`. Like the original's ramp, the run starts in steady state: the first
`users` users are placed as if they had joined 0, 1, 2 ... join gaps before the start, and
begin at the round they would be at (their earlier rounds are filled in by the workload).
All times are seconds relative to the run start.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from benchmarks.qa.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """Users, rounds per user, overall QPS and the launch window (seconds)."""

    users: int
    rounds: int
    qps: float
    duration_s: float

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ConfigError(f"--users: must be at least 1 (got {self.users})")
        if self.rounds < 1:
            raise ConfigError(f"--rounds: must be at least 1 (got {self.rounds})")
        if not (math.isfinite(self.qps) and self.qps > 0):
            raise ConfigError(f"--qps: must be a positive number of requests/s (got {self.qps})")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ConfigError(f"--duration: must be a positive number of seconds (got {self.duration_s})")

    @property
    def user_gap_s(self) -> float:
        """Seconds between two rounds of one user."""
        return self.users / self.qps

    @property
    def join_gap_s(self) -> float:
        """Seconds between two users joining."""
        return self.rounds / self.qps


@dataclass(frozen=True, kw_only=True)
class UserStart:
    """When a user joined (may be before the start) and its first round to send (0-based)."""

    index: int
    joined_at: float
    first_round: int


def first_launch(pacing: Pacing, start: UserStart) -> float:
    """When `start`'s first round is due."""
    return start.joined_at + start.first_round * pacing.user_gap_s


def next_launch(pacing: Pacing, prev_launch: float, prev_done: float) -> float:
    """When a user's next round is due: one gap after the previous launch, never before the
    previous answer finished."""
    return max(prev_launch + pacing.user_gap_s, prev_done)


def initial_users(pacing: Pacing) -> list[UserStart]:
    """The steady-state population at the start: user i joined i join gaps ago."""
    starts = []
    for index in range(pacing.users):
        # ceil(age / user_gap) with age = index * join_gap, in integers: no float drift.
        first_round = -(-index * pacing.rounds // pacing.users)
        if first_round < pacing.rounds:
            joined_at = -index * pacing.join_gap_s
            starts.append(UserStart(index=index, joined_at=joined_at, first_round=first_round))
    return starts


def joining_users(pacing: Pacing) -> Iterator[UserStart]:
    """Users joining after the start, one every join gap, while the launch window is open."""
    k = 1
    while k * pacing.join_gap_s < pacing.duration_s:
        yield UserStart(index=pacing.users - 1 + k, joined_at=k * pacing.join_gap_s, first_round=0)
        k += 1


def offered_launches(pacing: Pacing) -> list[float]:
    """Every launch time in the window when answers are instant: the load the schedule
    offers (what `qps` promises), sorted."""
    times = []
    for start in [*initial_users(pacing), *joining_users(pacing)]:
        for round_index in range(start.first_round, pacing.rounds):
            at = start.joined_at + round_index * pacing.user_gap_s
            if at >= pacing.duration_s:
                break
            times.append(at)
    return sorted(times)


def expected_requests(pacing: Pacing) -> int:
    """Requests the window should launch at the offered rate (for progress displays)."""
    return max(1, round(pacing.qps * pacing.duration_s))
